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
  - O(retention) is the same mapping as a profile's C(retention) in the configuration file, the agent role and
    M(lifeboat.backup.offsite). O(retention.keep_last) keeps the newest N backups. O(retention.keep_hourly),
    O(retention.keep_daily), O(retention.keep_weekly) (ISO weeks), O(retention.keep_monthly) and
    O(retention.keep_yearly) keep one backup in each of the newest N periods that have backups; the one kept is the
    newest backup of that period that did not fail verification (a period with only failed backups keeps its newest
    one). O(retention.keep_within) keeps every backup within that duration of the newest backup.
  - Never deletes the newest backup that passed verification, a C(.partial) directory while a run of the profile
    holds its lock, or directories that are not complete backups (no manifest, or a damaged manifest); those are
    reported under RV(prune.skipped) for an operator.
  - Removes leftover C(.partial) directories of dead runs once nothing in them changed for a day, and reports them.
  - Writes one line to the audit log and updates the profile's metrics (C(lifeboat_prune_*)).
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.storage
  - lifeboat.backup.retention
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
notes:
  - At least one key of O(retention) must be set to a non-zero value; an empty or all-zero policy fails instead of
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
    retention:
      keep_hourly: 48
      keep_within: 7d
  check_mode: true
  register: plan

- name: Keep 90 daily, 12 monthly and 7 yearly full backups
  lifeboat.backup.prune:
    backup_root: /var/backups/lifeboat
    profile: full
    retention:
      keep_daily: 90
      keep_monthly: 12
      keep_yearly: 7

- name: Apply the retention the profile has in the agent role's variables
  lifeboat.backup.prune:
    profile: payments
    retention: "{{ agent_profiles.payments.retention }}"
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
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    retention_argument_spec,
    run,
    storage_argument_spec,
)


def main():
    argument_spec = storage_argument_spec()
    argument_spec.update(profile=dict(type="str", required=True))
    argument_spec.update(retention_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def action():
        config = build_config(params)
        result = _prune.prune(config, params["profile"], params["retention"] or {}, check_mode=module.check_mode, via="module")
        for warning in result["warnings"]:
            module.warn(warning)
        return {"changed": result["changed"], "prune": result}

    run(module, action)


if __name__ == "__main__":
    main()
