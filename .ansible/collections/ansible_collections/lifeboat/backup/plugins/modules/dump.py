#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dump
short_description: Take a verified-by-construction PostgreSQL backup
version_added: 0.1.0
description:
  - Dumps one database with C(pg_dump) (custom format, its own compression off) streamed through C(zstd) and C(age)
    into C(<backup_root>/<profile>/<backup_id>/), with roles and tablespaces from C(pg_dumpall --globals-only) alongside.
  - Row counts per table and the newest value of each O(freshness_columns) entry are read in the same snapshot as the
    dump and recorded in C(manifest.json), which is written last. A backup without a manifest does not exist.
  - Any failure (server gone, wrong password, full disk, empty archive) fails the task, removes the partial
    directory and leaves earlier backups untouched.
  - Records an audit log line and Prometheus textfile metrics.
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.connection
  - lifeboat.backup.storage
attributes:
  check_mode:
    support: full
    description: Connects and resolves the tables that would be dumped; writes nothing.
  diff_mode:
    support: none
    description: A backup is new files; there is nothing to diff.
options:
  db:
    description:
      - Database to dump.
    type: str
    required: true
    aliases: [name]
  profile:
    description:
      - Name of the backup set; backups go to C(<backup_root>/<profile>/).
      - Letters, digits, C(-) and C(_). Default is O(db).
    type: str
  tables:
    description:
      - Dump the rows of only these tables (C(schema.table) or C(table)); partitions and inheritance children of a
        named table are included. Definitions of all tables are always dumped, so the backup restores on its own.
    type: list
    elements: str
    default: []
  exclude_tables:
    description:
      - Leave out the rows of these tables (their definitions are kept).
    type: list
    elements: str
    default: []
  encryption:
    description:
      - V(age) encrypts every artifact to O(recipients). V(none) must be chosen explicitly to store plain backups.
    type: str
    choices: [age, none]
    default: age
  recipients:
    description:
      - age public keys (C(age1...)) or SSH public keys to encrypt to. Required when O(encryption=age).
      - Hosts need only these public keys; the identities that decrypt live where restores run.
    type: list
    elements: str
    default: []
  compression_level:
    description:
      - zstd level, 1 (fastest) to 19. The default, zstd's own, keeps a dump close to raw C(pg_dump) speed on a
        small host with artifacts no larger than C(pg_dump)'s built-in compression makes; higher levels trade CPU
        time for smaller artifacts.
    type: int
    default: 3
  compression_threads:
    description:
      - zstd worker threads; V(0) uses one per core, at most 4. One C(pg_dump) stream rarely needs more at the
        default level, and every worker holds its own buffers (about 10-15 MiB at level 3); set it higher for high
        levels on a large host.
    type: int
    default: 0
  freshness_columns:
    description:
      - Mapping of table to a timestamp column; the newest value is recorded as evidence of how recent the backup's
        data is (RPO) and checked by restore-level verification.
    type: dict
    default: {}
  min_tables:
    description:
      - Fail when fewer tables than this would be dumped (a wrong database, or a selection that matches nothing).
    type: int
    default: 1
  lock_wait_timeout:
    description:
      - Seconds to wait for a table that another session holds locked (an C(ALTER TABLE), C(VACUUM FULL), an explicit
        C(LOCK)) before the backup fails with an error naming the table; V(0) waits for as long as it takes, as
        C(pg_dump) does by default.
    type: int
    default: 600
  backup_timeout:
    description:
      - Seconds the backup may take; when they run out, C(pg_dump) and the rest of the pipeline are stopped and the
        backup fails with an error naming this limit, leaving earlier backups as they were. V(0) sets no limit.
    type: int
    default: 0
  globals:
    description:
      - Also dump roles and tablespaces (C(pg_dumpall --globals-only); role passwords are left out unless the
        connecting role is a superuser).
    type: bool
    default: true
  verify:
    description:
      - V(archive) reads the new backup back right after writing it (decrypt, decompress, C(pg_restore) the whole
        archive). For encrypted backups an extra one-time recipient is added whose identity exists only for the
        duration of the task, so no long-lived private key is needed on the host.
      - V(none) leaves verification to M(lifeboat.backup.verify).
    type: str
    choices: [none, archive]
    default: none
seealso:
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.restore
  - module: community.postgresql.postgresql_db
"""

EXAMPLES = r"""
- name: Dump the shop database, encrypted to the ops team's key
  lifeboat.backup.dump:
    db: shop
    login_host: 127.0.0.1
    login_user: backup
    login_password: "{{ vault_backup_password }}"
    recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    freshness_columns:
      public.payments: created_at

- name: Hourly payments set, read back right after writing
  lifeboat.backup.dump:
    db: shop
    profile: payments
    tables: [public.payments]
    recipients: "{{ lifeboat_recipients }}"
    verify: archive
"""

RETURN = r"""
backup:
  description: The backup taken (in check mode, the plan).
  returned: always
  type: dict
  contains:
    id:
      description: Backup id, sortable by time.
      type: str
      sample: 20261122T020000Z
    path:
      description: Backup directory.
      type: str
    bytes:
      description: Total size of the artifacts.
      type: int
    artifacts:
      description: Name, kind, bytes, sha256, compression and encryption of each file.
      type: list
      elements: dict
    tables:
      description: Row counts per table, from the dump's snapshot.
      type: list
      elements: dict
    freshness:
      description: Newest value of each configured freshness column.
      type: list
      elements: dict
    duration_seconds:
      description: Wall time of the dump.
      type: float
    verification:
      description: Result of O(verify=archive).
      type: dict
      returned: when O(verify=archive)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import backup as _dump
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    connection_argument_spec,
    run,
    storage_argument_spec,
)

PROFILE_OPTIONS = ("tables", "exclude_tables", "compression_level", "compression_threads", "freshness_columns", "min_tables",
                   "lock_wait_timeout", "backup_timeout", "globals")


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(
        db=dict(type="str", required=True, aliases=["name"]),
        profile=dict(type="str"),
        tables=dict(type="list", elements="str", default=[]),
        exclude_tables=dict(type="list", elements="str", default=[]),
        encryption=dict(type="str", choices=["age", "none"], default="age"),
        recipients=dict(type="list", elements="str", default=[], no_log=False),
        compression_level=dict(type="int", default=3),
        compression_threads=dict(type="int", default=0),
        freshness_columns=dict(type="dict", default={}),
        min_tables=dict(type="int", default=1),
        lock_wait_timeout=dict(type="int", default=600),
        backup_timeout=dict(type="int", default=0),
        globals=dict(type="bool", default=True),
        verify=dict(type="str", choices=["none", "archive"], default="none"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    profile = params["profile"] or params["db"]

    def action():
        config = build_config(
            params,
            profiles={profile: dict(db=params["db"], **dict((k, params[k]) for k in PROFILE_OPTIONS))},
            encryption={"mode": params["encryption"], "recipients": params["recipients"]},
        )
        if module.check_mode:
            return {"changed": True, "backup": _dump.plan(config, profile)}
        result = _dump.backup(config, profile, via="module", verify=params["verify"])
        return {"changed": True, "backup": result}

    run(module, action)


if __name__ == "__main__":
    main()
