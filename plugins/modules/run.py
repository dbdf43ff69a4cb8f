#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run
short_description: The scheduled run of one backup profile, exactly as cron runs it
version_added: 0.2.0
description:
  - Runs the engine action behind C(lifeboat run) for one profile of a configuration file, in this order; the dead-man's-switch
    start ping, a backup read back at C(archive) level, the push offsite of it (and of earlier backups a failed push
    left behind), local retention, remote retention, then the success ping or the failure webhook.
  - A failed step stops the run before anything is deleted, notifies, and fails the task naming the step.
  - Playbook C(lifeboat.backup.daily_backup) runs each profile through this module, so a profile scheduled only from
    AWX gets the same steps as one scheduled by cron on the host.
author:
  - lifeboat.backup contributors (@lifeboat)
attributes:
  check_mode:
    support: full
    description: Connects and plans the backup; names the follow-up steps the configuration enables. Writes nothing.
  diff_mode:
    support: none
    description: A run makes new files and deletes old ones; there is nothing to diff.
options:
  profile:
    description:
      - The profile of the configuration file to run.
    type: str
    required: true
  config:
    description:
      - The lifeboat configuration file on the managed host (the one role M(lifeboat.backup.agent) writes).
    type: path
    default: /etc/lifeboat/lifeboat.yml
  identity_file:
    description:
      - Read the new backup back with this long-lived age identity instead of a one-time recipient; the backup then
        holds no one-time recipient.
    type: path
"""

EXAMPLES = r"""
- name: Run profile payments as cron would
  lifeboat.backup.run:
    profile: payments

- name: Run it with a configuration file of its own and a long-lived identity
  lifeboat.backup.run:
    profile: full
    config: /etc/lifeboat/lifeboat.yml
    identity_file: /root/.config/lifeboat/identity.txt
"""

RETURN = r"""
run:
  description: The run's report (in check mode, its plan).
  returned: always
  type: dict
  contains:
    backup:
      description: The backup taken (in check mode, what would be dumped), with its C(verification).
      type: dict
    offsite:
      description: The pushes made (a list), or null when offsite copies are off; in check mode whether they are on.
      type: raw
    prune:
      description: Local retention result, or null without a policy; in check mode the policy.
      type: raw
    prune_remote:
      description: Remote retention result, or null; in check mode the policy.
      type: raw
    steps:
      description: Seconds per step.
      type: dict
      returned: not in check mode
    notifications:
      description: Each webhook or ping delivery and its outcome.
      type: list
      returned: not in check mode
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import scheduled_run as _run
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import config_from_file, run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            profile=dict(type="str", required=True),
            config=dict(type="path", default="/etc/lifeboat/lifeboat.yml"),
            identity_file=dict(type="path", no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def action():
        config = config_from_file(params["config"])
        if module.check_mode:
            return {"changed": True, "run": _run.plan_profile(config, params["profile"])}
        report = _run.run_profile(config, params["profile"], via="module", identity_file=params["identity_file"])
        return {"changed": True, "run": report}

    run(module, action)


if __name__ == "__main__":
    main()
