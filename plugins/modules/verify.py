#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify
short_description: Prove a lifeboat backup intact, readable or restorable
version_added: 0.1.0
description:
  - V(checksum) reads every artifact once and compares size and SHA-256 with the manifest.
  - V(archive) also decrypts and decompresses every artifact and has C(pg_restore) read the whole database archive.
  - V(restore) restores the backup into a scratch database, compares the exact row count of every table and the
    newest value of each freshness column with the manifest (taken in the dump's snapshot), then drops the scratch
    database.
  - A truncated, bit-flipped or undecryptable artifact fails every level; the message names the artifact and the check.
  - The result is recorded in the backup's C(verification.json), the audit log and the metrics.
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.connection
  - lifeboat.backup.storage
  - lifeboat.backup.selection
  - lifeboat.backup.offsite.source
attributes:
  check_mode:
    support: full
    description: Names the backup and the checks that would run; reads and writes nothing else.
  diff_mode:
    support: none
    description: Verification changes nothing.
options:
  level:
    description:
      - How far to go. Each level includes the ones before it.
    type: str
    choices: [checksum, archive, restore]
    default: archive
  scratch_login_host:
    description:
      - Server for the scratch database of O(level=restore). Default is O(login_host).
    type: str
  scratch_login_port:
    description:
      - Port of the scratch server. Default is O(login_port).
    type: int
  scratch_login_user:
    description:
      - Role on the scratch server; it needs CREATEDB. Default is O(login_user).
    type: str
  scratch_login_password:
    description:
      - Password of O(scratch_login_user). Default is O(login_password).
    type: str
  scratch_login_unix_socket:
    description:
      - Socket directory of the scratch server. Default is O(login_unix_socket).
    type: str
  tmp_dir:
    description:
      - Where a backup read from O(offsite) is downloaded to before it is verified. Default is the system's
        temporary directory.
    type: path
notes:
  - Never reports C(changed); fails when the backup does not pass.
seealso:
  - module: lifeboat.backup.dump
  - module: lifeboat.backup.restore
"""

EXAMPLES = r"""
- name: Prove last night's backup restorable
  lifeboat.backup.verify:
    profile: full
    level: restore
    identity_file: /run/lifeboat/identity.txt
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"

- name: Prove the offsite copy of db1's newest full backup restorable, from a recovery host
  lifeboat.backup.verify:
    profile: full
    level: restore
    identity_file: /run/lifeboat/identity.txt
    offsite:
      bucket: acme-db-backups
      region: eu-central-1
      host: db1.example.internal
    login_user: postgres

- name: Check one backup's checksums
  lifeboat.backup.verify:
    path: /var/backups/lifeboat/payments/20261122T020000Z
    level: checksum
"""

RETURN = r"""
verification:
  description: What was verified and how.
  returned: always
  type: dict
  contains:
    id:
      description: Backup id.
      type: str
    path:
      description: Backup directory, or its C(s3://) address when read from O(offsite).
      type: str
    level:
      description: Level reached.
      type: str
    verified:
      description: True when every check passed (check mode returns false).
      type: bool
    duration_seconds:
      description: Time the verification took.
      type: float
    tables:
      description: Tables compared after the restore, with their row counts.
      type: list
      elements: dict
      returned: when O(level=restore)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import locate as _locate
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import verify as _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    connection_argument_spec,
    offsite_of,
    offsite_source_argument_spec,
    run,
    scratch_of,
    selection_argument_spec,
    storage_argument_spec,
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(selection_argument_spec())
    argument_spec.update(
        level=dict(type="str", choices=list(_verify.LEVELS), default="archive"),
        scratch_login_host=dict(type="str"),
        scratch_login_port=dict(type="int"),
        scratch_login_user=dict(type="str"),
        scratch_login_password=dict(type="str", no_log=True),
        scratch_login_unix_socket=dict(type="str"),
        tmp_dir=dict(type="path"),
    )
    argument_spec.update(offsite_source_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("path", "profile"), ("path", "backup_id"), ("path", "offsite")],
        required_one_of=[("path", "profile")],
    )
    params = module.params

    def action():
        config = build_config(params)
        remote = params["offsite"]
        if remote:
            config["offsite"] = offsite_of(remote)
        source = _locate.Source(config, params["profile"], params["backup_id"], params["path"], remote=remote,
                                host=remote and remote["host"], tmp_dir=params["tmp_dir"])
        entry = source.record
        if module.check_mode:
            return {"changed": False, "verification": {"id": entry.id, "path": entry.path, "level": params["level"], "verified": False}}
        scratch = scratch_of(config, params)
        return {"changed": False, "verification": source.verify(params["level"], identity_file=params["identity_file"], scratch=scratch)}

    run(module, action)


if __name__ == "__main__":
    main()
