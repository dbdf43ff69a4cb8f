#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restore
short_description: Restore a lifeboat backup into a new or existing database
version_added: 0.1.0
description:
  - Restores a whole database or selected tables, optionally with roles and tablespaces first.
  - Checks everything it can before touching the server (backup complete and intact, versions, identity, target
    state) and stops at the first error. A database created by the task is dropped again when the restore fails.
  - One job streams C(age -d | zstd -d | pg_restore) in a single transaction; several jobs decrypt once into a
    private temporary file, which is removed afterwards. While it is decrypted, the positions of the tables' data
    are written into the archive's table of contents (C(pg_dump) cannot record them when it writes into a pipe),
    so C(pg_restore --jobs) starts with the largest table and seeks straight to each one.
  - Into a new database (O(create)), when one table holds at least 1/O(jobs) of the data, its rows start loading
    while the rest is still being decrypted; what depends on it (indexes, constraints, triggers, foreign keys)
    follows once they are in. The plan's C(method) says so. On any failure the new database is dropped.
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
    description: Returns the plan (target state, tables, sizes, method) without touching anything.
  diff_mode:
    support: none
    description: Check mode returns the plan instead of a diff.
options:
  db:
    description:
      - Target database.
      - There is no alias C(target) - in M(community.postgresql.postgresql_db) that names a dump file.
    type: str
    required: true
  create:
    description:
      - Create the target database; it must not exist yet.
      - With V(false) the target must exist; if it holds any relation, O(clean=true) is required.
    type: bool
    default: true
  clean:
    description:
      - Drop and recreate the objects in the backup before restoring them into an existing database.
    type: bool
    default: false
  tables:
    description:
      - Restore only these tables (C(schema.table), or C(table) when unique in the backup).
      - Into a new database, every definition is restored with the rows of these tables only.
        Into an existing database, only these tables (with their defaults, constraints, indexes, triggers,
        policies and owned sequences) are restored and nothing else is touched.
      - Foreign keys are not restored for a table subset.
    type: list
    elements: str
    default: []
  jobs:
    description:
      - Parallel C(pg_restore) jobs.
    type: int
    default: 1
  globals:
    description:
      - Restore roles and tablespaces first; ones that already exist are kept (their attributes are updated).
    type: bool
    default: false
  no_owner:
    description:
      - Do not restore ownership and privileges (for a server without the backup's roles).
    type: bool
    default: false
  allow_system_target:
    description:
      - Allow a template database or the maintenance database as O(db). Without it they are refused, since every
        database created afterwards from a template would carry the backup's data.
    type: bool
    default: false
  tmp_dir:
    description:
      - Directory for the decrypted temporary archive when O(jobs) is more than 1, and for a backup read from
        O(offsite). Default is the system's.
    type: path
seealso:
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.catalog_info
"""

EXAMPLES = r"""
- name: Show what restoring the newest payments backup would do
  lifeboat.backup.restore:
    profile: payments
    db: payments_check
    identity_file: /run/lifeboat/identity.txt
  check_mode: true

- name: Restore last night's full backup into a new database, 2 jobs
  lifeboat.backup.restore:
    profile: full
    db: shop_restored
    jobs: 2
    identity_file: /run/lifeboat/identity.txt

- name: Put back one table in the live database
  lifeboat.backup.restore:
    profile: full
    backup_id: 20261122T020000Z
    db: shop
    create: false
    clean: true
    tables: [public.tickets]
    identity_file: /run/lifeboat/identity.txt

- name: Restore db1's newest full backup straight from the bucket on a recovery host
  lifeboat.backup.restore:
    profile: full
    db: shop_recovered
    identity_file: /run/lifeboat/identity.txt
    tmp_dir: /srv/recovery/tmp
    offsite:
      bucket: acme-db-backups
      region: eu-central-1
      host: db1.example.internal
"""

RETURN = r"""
restore:
  description: The plan, and after a real run the timings.
  returned: always
  type: dict
  contains:
    backup_id:
      description: Backup restored.
      type: str
    target:
      description: Target database.
      type: str
    target_state:
      description: V(absent), V(empty) or V(not empty) before the restore.
      type: str
    action:
      description: What is done to the target.
      type: str
    tables:
      description: Tables restored with the row counts recorded in the manifest.
      type: list
      elements: dict
    method:
      description: Streamed in one transaction, or through a decrypted temporary file with several jobs.
      type: str
    timings:
      description: Seconds spent per step and in total.
      type: dict
      returned: when not in check mode
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import locate as _locate
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import restore as _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    connection_argument_spec,
    offsite_of,
    offsite_source_argument_spec,
    run,
    selection_argument_spec,
    storage_argument_spec,
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(selection_argument_spec())
    argument_spec.update(
        db=dict(type="str", required=True),
        create=dict(type="bool", default=True),
        clean=dict(type="bool", default=False),
        tables=dict(type="list", elements="str", default=[]),
        jobs=dict(type="int", default=1),
        globals=dict(type="bool", default=False),
        no_owner=dict(type="bool", default=False),
        allow_system_target=dict(type="bool", default=False),
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
        options = _restore.Options(
            params["db"], create=params["create"], clean=params["clean"], tables=params["tables"], jobs=params["jobs"],
            globals=params["globals"], no_owner=params["no_owner"], identity_file=params["identity_file"], tmp_dir=params["tmp_dir"],
            allow_system_target=params["allow_system_target"],
        )
        if remote:
            config["offsite"] = offsite_of(remote)
        source = _locate.Source(config, params["profile"], params["backup_id"], params["path"], remote=remote,
                                host=remote and remote["host"], tmp_dir=params["tmp_dir"])
        if module.check_mode:  # the manifest is enough for the plan; a real run of a remote backup downloads it first
            return {"changed": True, "restore": _restore.plan(config, source.record, options).summary()}
        with source.on_disk() as entry:
            return {"changed": True, "restore": _restore.restore(config, entry, options)}

    run(module, action)


if __name__ == "__main__":
    main()
