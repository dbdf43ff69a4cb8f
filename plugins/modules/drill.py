#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: drill
short_description: Disaster-recovery drill of a lifeboat profile, with measured RTO and RPO
version_added: 0.2.0
description:
  - Selects a backup of O(profile) (the newest complete one under the source host's prefix in the bucket, O(backup_id),
    or a random one within the retention window), downloads it checking sizes and SHA-256 against the manifest,
    restores it into a new scratch database C(lifeboat_drill_<profile>_<time>) on the server this module connects to,
    and checks it.
  - "Checks: exact row counts and newest freshness values against the manifest; C(amcheck)'s
    C(bt_index_check(index, heapallindexed => true)) on every B-tree index; the content sample recorded at dump time
    (a digest of the rows whose primary-key hash falls in a fixed bucket, read in the dump's snapshot); and each of
    O(checks), an SQL query returning one boolean."
  - RTO is the wall time from drill start to checks passed; RPO is drill start minus the backup's consistent point.
    A missed O(rto_objective) or O(rpo_objective) fails the task, naming the objective, its target and the
    measurement (error kind C(objective)).
  - The scratch database and every downloaded or decrypted file are removed on success, failure and interruption,
    unless O(keep).
  - Writes a JSON, Markdown and self-contained HTML report under O(report_dir) (and a copy under
    C(<prefix>/drills/) in the bucket), an audit line, metrics C(lifeboat_drill_*) labelled by profile and source host,
    and notifies O(webhook_url) on failure.
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.connection
  - lifeboat.backup.storage
  - lifeboat.backup.offsite.source
  - lifeboat.backup.notify
attributes:
  check_mode:
    support: full
    description: Returns the plan (which backup, where from, the scratch database, the checks) and touches nothing.
  diff_mode:
    support: none
    description: A drill leaves nothing behind to compare.
options:
  profile:
    description:
      - Profile whose backups are drilled.
    type: str
    required: true
  backup_id:
    description:
      - Drill this backup instead of the newest one.
    type: str
  pick:
    description:
      - V(newest), or V(random) among the complete backups within the retention window (C(keep_within)).
    type: str
    choices: [newest, random]
    default: newest
  source:
    description:
      - V(offsite) reads the backup from O(offsite). V(local) reads this host's O(backup_root); the report says that
        this proves less.
    type: str
    choices: [offsite, local]
    default: offsite
  source_host:
    description:
      - Host whose backups are drilled. Default is O(offsite.host), else this host's name.
    type: str
  identity_file:
    description:
      - age identity file that decrypts the backups; keep it readable only by the drill user.
    type: path
  jobs:
    description:
      - Parallel C(pg_restore) jobs.
    type: int
    default: 1
  keep:
    description:
      - Keep the scratch database and the downloaded files for inspection; the result says where.
    type: bool
    default: false
  report_dir:
    description:
      - Where the reports are written, under C(<report_dir>/<profile>/).
    type: path
    default: /var/lib/lifeboat/drills
  tmp_dir:
    description:
      - Where the backup is downloaded and decrypted. Default is the system's temporary directory.
    type: path
  rto_objective:
    description:
      - Longest acceptable time from drill start to checks passed, such as V(4h).
    type: str
  rpo_objective:
    description:
      - Largest acceptable age of the restored backup at drill start, such as V(1h).
    type: str
  checks:
    description:
      - The profile's own checks, run read-only in the restored database.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name in the result and the report.
        type: str
        required: true
      sql:
        description: A query returning one row with one boolean column; V(true) passes.
        type: str
        required: true
  notify_on_success:
    description:
      - Also notify O(webhook_url) when the drill passes.
    type: bool
    default: false
notes:
  - The connecting role needs CREATEDB, and may need to be allowed to create the C(amcheck) extension (superuser on
    PostgreSQL 15).
  - C(changed) is true after a real run because reports and metrics were written on the drill host; the source backups,
    the source host and the backups in the bucket are never changed.
seealso:
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.restore
"""

EXAMPLES = r"""
- name: Drill db1's payments from the bucket on a recovery host
  lifeboat.backup.drill:
    profile: payments
    identity_file: /etc/lifeboat/drill-identity.txt
    jobs: 2
    rto_objective: 4h
    rpo_objective: 1h
    checks:
      - name: recent payments
        sql: select max(created_at) > now() - interval '2 hours' from payments
    offsite:
      bucket: acme-db-backups
      region: eu-central-1
      host: db1.example.internal
      access_key: "{{ vault_drill_access_key }}"
      secret_key: "{{ vault_drill_secret_key }}"
    login_host: 127.0.0.1
    login_user: postgres
  register: drill

- name: Show the plan of a drill without touching anything
  lifeboat.backup.drill:
    profile: full
    source: local
  check_mode: true
"""

RETURN = r"""
drill:
  description: What the drill did and found (check mode returns the plan).
  returned: always
  type: dict
  contains:
    ok:
      description: True when the backup was restored and every check passed.
      type: bool
    profile:
      description: Profile drilled.
      type: str
    backup_id:
      description: Backup used.
      type: str
    source_host:
      description: Host whose backup was used.
      type: str
    consistent_at:
      description: The backup's consistent point in time.
      type: str
    rto_seconds:
      description: Drill start to checks passed.
      type: float
    rpo_seconds:
      description: Drill start minus RV(drill.consistent_at).
      type: float
    objectives:
      description: Per objective (C(rto), C(rpo)) the target, target_seconds, measured_seconds and met.
      type: dict
    stages:
      description: select, fetch, restore, checks, teardown with seconds and outcome.
      type: dict
    checks:
      description: Every check with name, ok (null when skipped) and detail.
      type: list
      elements: dict
    report:
      description: Paths of the json, markdown and html reports, and the bucket copies.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import drill as _drill
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import LifeboatError
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    connection_argument_spec,
    notify_argument_spec,
    offsite_of,
    offsite_source_argument_spec,
    storage_argument_spec,
    webhook_of,
)

DEFAULT_REPORT_DIR = "/var/lib/lifeboat/drills"


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(offsite_source_argument_spec())
    argument_spec.update(notify_argument_spec())
    argument_spec.update(
        profile=dict(type="str", required=True),
        backup_id=dict(type="str"),
        pick=dict(type="str", choices=list(_drill.PICKS), default="newest"),
        source=dict(type="str", choices=list(_drill.SOURCES), default="offsite"),
        source_host=dict(type="str"),
        identity_file=dict(type="path", no_log=False),
        jobs=dict(type="int", default=1),
        keep=dict(type="bool", default=False),
        report_dir=dict(type="path", default=DEFAULT_REPORT_DIR),
        tmp_dir=dict(type="path"),
        rto_objective=dict(type="str"),
        rpo_objective=dict(type="str"),
        checks=dict(type="list", elements="dict", default=[], options=dict(name=dict(type="str", required=True),
                                                                           sql=dict(type="str", required=True))),
        notify_on_success=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("source", "offsite", ("offsite",))])
    params = module.params
    remote = params["offsite"] or {}
    drill_section = dict((k, params[k]) for k in ("rto_objective", "rpo_objective", "checks", "source", "pick", "jobs")
                         if params[k] is not None)
    drill_section["source_host"] = params["source_host"] or remote.get("host")
    # The drill reads the database name from the backup's manifest; the profile only carries its drill settings.
    profiles = {params["profile"]: {"db": params["profile"], "drill": drill_section}}
    webhook = webhook_of(params)
    if webhook:
        profiles[params["profile"]]["notify"] = dict(webhook, on_success=params["notify_on_success"])
    try:
        config = build_config(params, profiles=profiles)
        if remote:
            config["offsite"] = offsite_of(remote)
        config["report_dir"] = params["report_dir"]
        options = _drill.Options(backup_id=params["backup_id"], identity_file=params["identity_file"], keep=params["keep"],
                                 tmp_dir=params["tmp_dir"], check_mode=module.check_mode)
        result = _drill.drill(config, params["profile"], options)
    except LifeboatError as exc:
        failed = getattr(exc, "drill", None)
        module.fail_json(msg=str(exc), error_kind=exc.kind, **({"drill": failed} if failed else {}))
    changed = result.pop("changed")
    warnings = result.pop("warnings", [])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=changed, drill=result)


if __name__ == "__main__":
    main()
