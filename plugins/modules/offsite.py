#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: offsite
short_description: Push lifeboat backups to S3-compatible object storage, pull them back, prune them remotely
version_added: 0.1.0
description:
  - O(state=pushed) uploads a complete local backup to C(<prefix>/<host>/<profile>/<backup_id>/) in the bucket.
    Artifacts go first, each with a SHA-256 checksum the store verifies (files larger than O(part_size_mb) in
    parts, so memory stays bounded); their stored sizes and checksums are compared with the manifest, and the
    manifest goes last. A remote backup without its manifest does not exist.
  - A push of a backup already offsite and identical uploads nothing and reports no change. A failed push aborts
    its multipart uploads, leaves no remote manifest and names the object that failed; running it again completes it.
  - O(state=pulled) downloads a backup (O(backup_id), default the newest) into C(<dest>/<profile>/<backup_id>/),
    checks every artifact against the manifest, and writes the manifest last, so the directory is a backup only
    when it is whole.
  - O(state=pruned) applies a retention policy to the backups in the bucket with the same rules as
    M(lifeboat.backup.prune). Backups under Object Lock retention or legal hold are reported and skipped.
  - Pushes, pulls and remote prunes are written to the audit log; pushes also update the offsite metrics.
author:
  - lifeboat.backup contributors (@lifeboat)
requirements:
  - boto3 on the managed host (Debian package C(python3-boto3)).
extends_documentation_fragment:
  - lifeboat.backup.offsite
  - lifeboat.backup.storage
  - lifeboat.backup.retention
attributes:
  check_mode:
    support: full
    description: Compares the local and the remote side and reports what would be uploaded, downloaded or deleted.
  diff_mode:
    support: none
    description: The result lists the objects uploaded, downloaded or deleted; no diff is produced.
options:
  state:
    description:
      - V(pushed) to upload a local backup, V(pulled) to download one, V(pruned) to apply O(retention) in the bucket.
    type: str
    choices: [pushed, pulled, pruned]
    default: pushed
  path:
    description:
      - Local backup directory to push. Mutually exclusive with O(profile).
    type: path
  profile:
    description:
      - Profile of the backup, the backup set as everywhere in lifeboat.backup. With O(state=pushed), the newest local
        backup of the profile under O(backup_root) (or O(backup_id)) is pushed.
      - An AWS named profile, amazon.aws's C(profile), is O(aws_profile) here.
    type: str
  backup_id:
    description:
      - Id of the backup to push or pull. Default is the newest, ordered by the time recorded in the manifests.
    type: str
  host:
    description:
      - Host whose backups to pull or prune (the C(<host>) part of the keys). Default is this host's name.
      - A push always uses the host recorded in the backup's manifest.
    type: str
  dest:
    description:
      - Backup root to pull into; the backup lands in C(<dest>/<profile>/<backup_id>/). Default is O(backup_root).
    type: path
notes:
  - The bucket must exist. With Object Lock options the bucket must have Object Lock enabled.
  - Backups are pushed as they are on disk, encrypted with age before they leave the host.
seealso:
  - module: lifeboat.backup.dump
  - module: lifeboat.backup.prune
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.restore
"""

EXAMPLES = r"""
- name: Push the newest backup of profile payments to AWS S3
  lifeboat.backup.offsite:
    profile: payments
    bucket: acme-db-backups
    region: eu-central-1
    storage_class: STANDARD_IA
    server_side_encryption: aws:kms

- name: Push to an S3-compatible store with explicit credentials
  lifeboat.backup.offsite:
    path: /var/backups/lifeboat/full/20261122T020000Z
    bucket: backups
    endpoint_url: https://s3.backup.example.internal
    addressing_style: path
    checksum_mode: when_required
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"

- name: Pull the newest full backup of db1 onto a recovery host
  lifeboat.backup.offsite:
    state: pulled
    profile: full
    host: db1.example.internal
    dest: /srv/recovery
    bucket: acme-db-backups

- name: Keep 7 daily and 4 weekly backups offsite
  lifeboat.backup.offsite:
    state: pruned
    profile: full
    bucket: acme-db-backups
    retention:
      keep_daily: 7
      keep_weekly: 4
"""

RETURN = r"""
offsite:
  description: What was (or in check mode would be) pushed, pulled or pruned.
  returned: always
  type: dict
  contains:
    id:
      description: Backup id pushed or pulled.
      type: str
      returned: when O(state=pushed) or O(state=pulled)
    location:
      description: C(s3://) address of the backup (pushed) or of the profile (pruned).
      type: str
      returned: when O(state=pushed) or O(state=pruned)
    uploaded:
      description: Objects uploaded, the manifest last; empty when the backup was already offsite.
      type: list
      elements: str
      returned: when O(state=pushed)
    uploaded_bytes:
      description: Bytes uploaded.
      type: int
      returned: when O(state=pushed)
    path:
      description: Local directory of the pulled backup.
      type: str
      returned: when O(state=pulled)
    source:
      description: C(s3://) address the backup was pulled from.
      type: str
      returned: when O(state=pulled)
    deleted:
      description: Remote backups deleted by retention.
      type: list
      elements: str
      returned: when O(state=pruned)
    kept:
      description: Remote backups kept.
      type: list
      elements: str
      returned: when O(state=pruned)
    skipped:
      description: Remote backups left in place, with the reason (Object Lock, damaged manifest, push in progress).
      type: list
      elements: dict
      returned: when O(state=pruned)
    backups:
      description: Every remote backup with the action and the retention rules that keep it.
      type: list
      elements: dict
      returned: when O(state=pruned)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import locate as _locate
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import pull as _offsite_pull
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import push as _push
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import remote_prune as _offsite_prune
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    offsite_argument_spec,
    offsite_of,
    retention_argument_spec,
    retention_of,
    run,
    storage_argument_spec,
)


def _act(module, config, params):
    state, check = params["state"], module.check_mode
    if state == "pushed":
        if not (params["path"] or params["profile"]):
            raise ConfigError("state=pushed needs path or profile")
        entry = _locate.Source(config, params["profile"], params["backup_id"], params["path"]).record
        return _push.push(config, entry, check_mode=check)
    if not params["profile"]:
        raise ConfigError("state=%s needs profile" % state)
    if state == "pulled":
        return _offsite_pull.pull(config, params["profile"], params["backup_id"], params["host"], params["dest"], check_mode=check)
    if not params["retention"]:
        raise ConfigError("state=pruned needs retention")
    policy = retention_of(params["retention"])
    return _offsite_prune.prune(config, params["profile"], policy, params["host"], check_mode=check)


def main():
    argument_spec = storage_argument_spec()
    argument_spec.update(offsite_argument_spec())
    argument_spec.update(
        state=dict(type="str", choices=["pushed", "pulled", "pruned"], default="pushed"),
        path=dict(type="path"),
        profile=dict(type="str"),
        backup_id=dict(type="str"),
        host=dict(type="str"),
        dest=dict(type="path"),
    )
    argument_spec.update(retention_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("path", "profile"), ("path", "backup_id")],
    )
    params = module.params

    def action():
        config = build_config(params)
        config["offsite"] = offsite_of(params)
        if params["host"]:
            config["host"] = params["host"]
        result = _act(module, config, params)
        return {"changed": result["changed"], "offsite": result}

    run(module, action)


if __name__ == "__main__":
    main()
