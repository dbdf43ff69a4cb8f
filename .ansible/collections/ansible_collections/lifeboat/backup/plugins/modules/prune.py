#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prune
short_description: Delete lifeboat backups a retention policy no longer keeps
version_added: 0.1.0
description:
  - Applies a retention policy to the backups of one profile under O(backup_root) and deletes the ones no rule keeps.
  - Backups are ordered by the snapshot time recorded in their manifest (C(consistent_at)), never by directory names
    or modification times. Periods are UTC.
  - O(keep_last) keeps the newest N backups. O(keep_hourly), O(keep_daily), O(keep_weekly) (ISO weeks),
    O(keep_monthly) and O(keep_yearly) keep one backup in each of the newest N periods that have backups; the one
    kept is the newest backup of that period that did not fail verification (a period with only failed backups
    keeps its newest one). O(keep_within) keeps every backup within that duration of the newest backup.
  - Never deletes the newest backup that passed verification, a C(.partial) directory while a run of the profile
    holds its lock, or directories that are not complete backups (no manifest, or a damaged manifest); those are
    reported under RV(prune.skipped) for an operator.
  - Removes leftover C(.partial) directories of dead runs once nothing in them changed for a day, and reports them.
  - Writes one line to the audit log and updates the profile's metrics (C(lifeboat_prune_*)).
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.storage
attributes:
  check_mode:
    support: full
    description: Returns the plan (each backup, kept or deleted, and the rules that keep it); deletes nothing.
  diff_mode:
    support: none
    description: The plan in RV(prune.backups) shows what changes; no diff is produced.
options:
  profile:
    description:
      - Profile whose backups (C(<backup_root>/<profile>/)) are pruned.
    type: str
    required: true
  keep_last:
    description:
      - Keep the newest N backups.
    type: int
  keep_hourly:
    description:
      - Keep the newest backup of each of the newest N hours that have backups.
    type: int
  keep_daily:
    description:
      - Keep the newest backup of each of the newest N days that have backups.
    type: int
  keep_weekly:
    description:
      - Keep the newest backup of each of the newest N ISO weeks that have backups.
    type: int
  keep_monthly:
    description:
      - Keep the newest backup of each of the newest N months that have backups.
    type: int
  keep_yearly:
    description:
      - Keep the newest backup of each of the newest N years that have backups.
    type: int
  keep_within:
    description:
      - Keep every backup taken within this duration of the newest backup, for example V(36h), V(7d), V(1y).
      - Measured from the newest backup's snapshot time, not from now, so a host whose backups stopped never ages
        all of them out.
    type: str
notes:
  - At least one C(keep_*) option must be set to a non-zero value; an empty or all-zero policy fails instead of
    deleting every backup.
  - C(changed) is true only when a backup or a leftover directory was (or in check mode would be) deleted; a second
    run with the same policy reports no change.
  - Prune does not take the profile lock, so it never makes a scheduled backup fail.
seealso:
  - module: lifeboat.backup.dump
  - module: lifeboat.backup.catalog_info
"""

EXAMPLES = r"""
- name: Show what the payments policy would delete
  lifeboat.backup.prune:
    profile: payments
    keep_hourly: 48
    keep_within: 7d
  check_mode: true
  register: plan

- name: Keep 90 daily, 12 monthly and 7 yearly full backups
  lifeboat.backup.prune:
    backup_root: /var/backups/lifeboat
    profile: full
    keep_daily: 90
    keep_monthly: 12
    keep_yearly: 7
"""

RETURN = r"""
prune:
  description: The plan and what was done.
  returned: success
  type: dict
  contains:
    profile:
      description: Profile pruned.
      type: str
      sample: payments
    policy:
      description: The effective policy (unset and zero rules left out).
      type: dict
      sample: {"keep_hourly": 48, "keep_within": "7d"}
    backups:
      description: Every complete backup, newest first, with its fate and the rules that keep it.
      type: list
      elements: dict
      sample:
        - id: 20261122T070000Z
          time: "2026-11-22T07:00:01Z"
          verification: ok
          action: keep
          rules: ["keep_hourly 2026-11-22T07", "keep_within 7d", "newest verified"]
        - id: 20261114T060000Z
          time: "2026-11-14T06:00:01Z"
          verification: unverified
          action: delete
          rules: []
    kept:
      description: Ids of the backups kept.
      type: list
      elements: str
    deleted:
      description: Ids of the backups deleted (in check mode, that would be deleted).
      type: list
      elements: str
    leftovers_removed:
      description: Directory names of dead runs' C(.partial) leftovers and interrupted deletions removed.
      type: list
      elements: str
    skipped:
      description: Directories that are not complete backups and were left alone, with the reason.
      type: list
      elements: dict
      sample: [{"id": "20261122T080000Z.partial", "status": "in_progress", "reason": "a run of this profile is writing it"}]
    freed_bytes:
      description: Bytes deleted (or that would be).
      type: int
    warnings:
      description: Problems that did not stop the prune (for example the metrics file could not be written).
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import prune as _prune
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import build_config, run, storage_argument_spec
from ansible_collections.lifeboat.backup.plugins.module_utils._store.retention import COUNT_RULES


def main():
    argument_spec = storage_argument_spec()
    argument_spec.update(profile=dict(type="str", required=True), keep_within=dict(type="str"))
    argument_spec.update((rule, dict(type="int")) for rule in COUNT_RULES)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def action():
        config = build_config(params)
        policy = dict((rule, params[rule]) for rule in COUNT_RULES + ("keep_within",))
        result = _prune.prune(config, params["profile"], policy, check_mode=module.check_mode, via="module")
        for warning in result["warnings"]:
            module.warn(warning)
        return {"changed": result["changed"], "prune": result}

    run(module, action)


if __name__ == "__main__":
    main()
