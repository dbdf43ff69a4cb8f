#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rotate_offsite_key
short_description: Rotate the access key of the IAM user that writes the offsite copies, tested before the old one is deleted
version_added: 0.2.0
description:
  - Rotates the offsite access key O(access_key) of IAM user O(user) through the IAM API (AWS IAM, or a store that
    implements C(CreateAccessKey) and C(DeleteAccessKey), such as SeaweedFS started with C(-s3.iam.readOnly=false)).
  - B(Create) a second key (C(CreateAccessKey)). B(Test) it with a fresh S3 client holding only the new key, which lists
    O(prefix) in O(bucket), puts, gets (bytes compared) and deletes one probe object under it, waiting a few seconds
    for a key that is not valid yet. B(Switch) the hosts, rewriting every consumer file atomically with its
    owner, group and mode, and reading it back. B(Delete) the old key (C(DeleteAccessKey)).
  - A failing step deletes the new key and puts the consumer files back, so the old key stays in force, and fails
    naming what failed. A user that already has two keys (AWS's limit) is refused, naming the key to delete.
  - The secret key is never returned or logged; it is written only to the consumer files.
  - The key is due when its IAM C(CreateDate) is older than O(max_age) (for a store that keeps no date, when the
    last rotation recorded under O(state_dir) is).
author:
  - lifeboat.backup contributors (@lifeboat)
requirements:
  - boto3 on the managed host (Debian package C(python3-boto3)).
extends_documentation_fragment:
  - lifeboat.backup.offsite
  - lifeboat.backup.storage
  - lifeboat.backup.notify
attributes:
  check_mode:
    support: full
    description: Reads the user's keys and says whether the key is due and which consumer files would be written;
      creates, writes and deletes nothing.
  diff_mode:
    support: none
    description: Secrets are not diffed.
options:
  user:
    description:
      - IAM user owning O(access_key).
      - Default is the user of O(access_key) itself (IAM C(GetUser)); required with O(admin_access_key).
    type: str
  admin_access_key:
    description:
      - Access key id of the credentials that make the IAM calls. Default is the key being rotated, which AWS lets
        a user use to manage its own keys.
    type: str
  admin_secret_key:
    description: Secret access key of O(admin_access_key).
    type: str
  admin_session_token:
    description: Session token of O(admin_access_key), for temporary admin credentials.
    type: str
  iam_endpoint_url:
    description:
      - URL of the IAM API. Default is O(endpoint_url) when it is set (SeaweedFS serves IAM on its S3 port), else
        AWS IAM.
    type: str
  max_age:
    description: Rotate only when the key in use is older than this (V(30d), V(12h)); a younger key is left alone.
    type: str
    default: 30d
  force:
    description: Rotate even when the key is younger than O(max_age).
    type: bool
    default: false
  consumers:
    description:
      - Files the new key is written to, atomically, with their owner, group and mode.
      - Default is the host's lifeboat configuration O(lifeboat_config).
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(lifeboat_config) a lifeboat configuration file (C(access_key) and C(secret_key) of every offsite
            section holding the old key, at the top level and in profiles; comments are not kept).
          - V(env) an environment file of C(KEY=value) lines (O(consumers[].id_key) and O(consumers[].key) are
            replaced; other lines stay).
        type: str
        required: true
        choices: [lifeboat_config, env]
      path:
        description: Absolute path of the file.
        type: path
        required: true
      owner:
        description: Owner of the file; default its current owner (or the user running the module).
        type: str
      group:
        description: Group of the file; default its current group.
        type: str
      mode:
        description: Mode; nothing for others, at most read for the group.
        type: str
        default: "0600"
      key:
        description: With V(env), the variable holding the secret key.
        type: str
        default: AWS_SECRET_ACCESS_KEY
      id_key:
        description: With V(env), the variable holding the access key id.
        type: str
        default: AWS_ACCESS_KEY_ID
  lifeboat_config:
    description: The host's lifeboat configuration, the consumer when O(consumers) is empty.
    type: path
    default: /etc/lifeboat/lifeboat.yml
  state_dir:
    description: Where the rotation state is kept (0700 directory, 0600 files, no secrets); default C(<backup_root>/.rotation).
    type: path
notes:
  - When neither O(access_key) nor O(aws_profile) is set, the key being rotated is the one in the offsite section of
    the first C(lifeboat_config) consumer (by default O(lifeboat_config)), the key the host's backups push with. A
    scheduled rotation should leave O(access_key) unset, since the inventory may still hold a key deleted by the
    last rotation. Ansible also masks the value of a C(no_log) option wherever it appears in the result, so a given
    O(access_key) shows as a placeholder in RV(active_key_id) or RV(retired_key_id).
  - C(changed) is true when a key was (or would be) rotated; a rerun within O(max_age) reports no change.
  - Writes one audit line per run (user, key ids, consumers written, test result; never the secret), metrics
    C(lifeboat_credential_last_rotation_timestamp_seconds) and C(lifeboat_credential_age_seconds) with label
    C(role=offsite:<user>).
  - A failed rotation (not in check mode) posts O(webhook_url) as C(rotate-offsite-key:<user>), with the error and
    never a secret. Without O(webhook_url), it posts the C(webhook_url) of O(lifeboat_config)'s C(notify) section in
    its C(webhook_format) when that file exists, as C(lifeboat rotate-offsite-key) does; never the dead-man's switch,
    which watches the host's backups.
  - "The IAM permissions needed on the user: C(iam:ListAccessKeys), C(iam:CreateAccessKey), C(iam:DeleteAccessKey),
    C(iam:GetUser); the user's S3 permissions must allow C(s3:ListBucket), C(s3:PutObject), C(s3:GetObject) and
    C(s3:DeleteObject) under O(prefix)."
  - A host's inventory or vault still holds the old key after a rotation; update it, or the next run of role
    lifeboat.backup.agent writes the deleted key back.
seealso:
  - module: lifeboat.backup.offsite
  - module: lifeboat.backup.rotate_password
"""

EXAMPLES = r"""
- name: Rotate the key the host pushes with (read from /etc/lifeboat/lifeboat.yml) when due; the key rotates itself
  lifeboat.backup.rotate_offsite_key:
    bucket: lifeboat-backups
    region: eu-central-1
  become: true
  become_user: lifeboat

- name: Rotate the key of user backup-db1 on SeaweedFS with admin credentials, writing an env file too
  lifeboat.backup.rotate_offsite_key:
    bucket: backups
    endpoint_url: https://s3.internal.example:8333
    addressing_style: path
    access_key: "{{ vault_offsite_access_key }}"
    secret_key: "{{ vault_offsite_secret_key }}"
    user: backup-db1
    admin_access_key: "{{ vault_seaweed_admin_key }}"
    admin_secret_key: "{{ vault_seaweed_admin_secret }}"
    max_age: 90d
    consumers:
      - type: lifeboat_config
        path: /etc/lifeboat/lifeboat.yml
      - type: env
        path: /etc/lifeboat/offsite.env
        owner: lifeboat
"""

RETURN = r"""
rotated:
  description: Whether a new key was created and put in force in this run.
  returned: always
  type: bool
due:
  description: Whether the key was due (older than O(max_age), or forced).
  returned: always
  type: bool
user:
  description: The IAM user whose key it is.
  returned: always
  type: str
  sample: backup-db1
active_key_id:
  description: The access key id the consumers hold now (not secret).
  returned: always
  type: str
  sample: AKIAIOSFODNN7EXAMPLE
retired_key_id:
  description: The access key id deleted in this run; null otherwise.
  returned: always
  type: str
  sample: AKIAI44QH8DHBEXAMPLE
rotated_at:
  description: When the key in force was created or rotated (UTC); null when unknown.
  returned: always
  type: str
  sample: "2026-12-01T23:00:00Z"
next_due:
  description: When the key becomes due again.
  returned: always
  type: str
  sample: "2026-12-31T23:00:00Z"
consumers:
  description: Consumer files written (in check mode, that would be written).
  returned: always
  type: list
  elements: str
tests:
  description: What the new key proved it can do.
  returned: always
  type: list
  elements: str
  sample: ["list s3://backups/lifeboat/", "put, get (bytes compared) and delete s3://backups/lifeboat/.lifeboat-key-probe-1f2e"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import rotate_offsite_key as _rotate_key
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config, config_from_file, consumer_file_options, notify_argument_spec, offsite_argument_spec, offsite_of, run,
    storage_argument_spec, webhook_of,
)

CONSUMER_OPTIONS = dict(
    consumer_file_options(),
    type=dict(type="str", required=True, choices=["lifeboat_config", "env"]),
    key=dict(type="str", default=_rotate_key.ENV_KEYS["key"], no_log=False),
    id_key=dict(type="str", default=_rotate_key.ENV_KEYS["user_key"], no_log=False),
)


def _consumers(items):
    """The engine names the id's variable as the password rotation names the login's: user_key."""
    consumers = []
    for given in items:
        item = dict(given)
        item["user_key"] = item.pop("id_key")
        if item["type"] != "env":
            item.pop("key")
            item.pop("user_key")
        consumers.append(item)
    return consumers


def main():
    argument_spec = offsite_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(notify_argument_spec())
    argument_spec.update(
        user=dict(type="str"),
        admin_access_key=dict(type="str", no_log=True),
        admin_secret_key=dict(type="str", no_log=True),
        admin_session_token=dict(type="str", no_log=True),
        iam_endpoint_url=dict(type="str"),
        max_age=dict(type="str", default=_rotate_key.DEFAULT_MAX_AGE),
        force=dict(type="bool", default=False),
        consumers=dict(type="list", elements="dict", options=CONSUMER_OPTIONS, default=[]),
        lifeboat_config=dict(type="path", default="/etc/lifeboat/lifeboat.yml"),
        state_dir=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_together=[("admin_access_key", "admin_secret_key")])
    params = module.params

    def action():
        host = config_from_file(params["lifeboat_config"]) if os.path.exists(params["lifeboat_config"]) else None
        config = build_config(params, notify=webhook_of(params, host and host["notify"]))
        config["offsite"] = offsite_of(params)
        admin = dict(access_key=params["admin_access_key"], secret_key=params["admin_secret_key"],
                     session_token=params["admin_session_token"])
        result = _rotate_key.rotate_key(
            config, via="module", check_mode=module.check_mode, user=params["user"], max_age=params["max_age"],
            force=params["force"], admin=admin, iam_endpoint_url=params["iam_endpoint_url"],
            consumers=_consumers(params["consumers"]), state_dir=params["state_dir"],
            config_path=params["lifeboat_config"])
        for warning in result.pop("warnings"):
            module.warn(warning)
        result.pop("rotated_epoch", None)
        return result

    run(module, action)


if __name__ == "__main__":
    main()
