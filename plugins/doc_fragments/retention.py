# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # One retention shape: the same mapping as a profile's retention in lifeboat.yml, the agent role and offsite.
    DOCUMENTATION = r"""
options:
  retention:
    description:
      - Retention policy, with the keys of a profile's C(retention) setting in the configuration file.
      - Backups are ordered by the snapshot time in their manifests; periods are UTC. In each of the newest N periods
        that have backups, the newest backup that did not fail verification is kept.
      - At least one key must be set to a non-zero value; an empty or all-zero policy fails instead of deleting
        every backup.
    type: dict
    suboptions:
      keep_last:
        description: Keep the N newest backups.
        type: int
      keep_hourly:
        description: Keep one backup in each of the N newest hours that have backups.
        type: int
      keep_daily:
        description: Keep one backup in each of the N newest days that have backups.
        type: int
      keep_weekly:
        description: Keep one backup in each of the N newest ISO weeks that have backups.
        type: int
      keep_monthly:
        description: Keep one backup in each of the N newest months that have backups.
        type: int
      keep_yearly:
        description: Keep one backup in each of the N newest years that have backups.
        type: int
      keep_within:
        description:
          - Keep every backup taken within this duration (V(36h), V(7d), V(1y)) of the newest one.
          - Measured from the newest backup's snapshot time, not from now, so a host whose backups stopped never
            ages all of them out.
        type: str
"""
