#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: hold
short_description: Keep one lifeboat backup whatever the retention policy says, or release it
version_added: 0.1.0
description:
  - Holds (O(state=present)) or releases (O(state=absent)) one backup, as Barman's C(keep) does, for example the
    transactions kept seven years for legal reasons.
  - "A held backup is never deleted by M(lifeboat.backup.prune), C(lifeboat prune) or remote prune; their plans
    show it kept with the rule C(hold: <reason>). M(lifeboat.backup.catalog_info) and C(lifeboat list) show holds
    and reasons."
  - The hold is recorded in C(hold.json) (mode 0600) in the backup directory. With O(offsite), the backup's copy
    in that bucket is held too, when it is there, by a C(hold.json) object under its prefix, which remote prune
    honours on any bucket, and an S3 Object Lock legal hold on each of its objects when the bucket has Object
    Lock. A backup pushed later gets the remote hold from that push. The copy's keys use the host recorded in the
    backup's manifest; O(offsite.host) is not used.
  - Writes one line to the audit log (action C(hold) or C(release)).
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.storage
  - lifeboat.backup.offsite.source
attributes:
  check_mode:
    support: full
    description: Reports what would change (locally and in the bucket); changes nothing.
  diff_mode:
    support: none
    description: RV(hold.previous) and RV(hold.hold) show the change; no diff is produced.
options:
  profile:
    description:
      - Profile of the backup.
    type: str
    required: true
  backup_id:
    description:
      - Id of the backup to hold or release.
    type: str
    required: true
  reason:
    description:
      - Why the backup is kept (shown by list and prune). Required with O(state=present); changing it updates the
        hold.
    type: str
  state:
    description:
      - V(present) holds the backup, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - C(changed) is true only when the hold is new, its reason changed, it was released, or the bucket's copy was
    brought in line; a second identical run reports no change.
seealso:
  - module: lifeboat.backup.prune
  - module: lifeboat.backup.catalog_info
"""

EXAMPLES = r"""
- name: Keep the year-end payments backup for seven years
  lifeboat.backup.hold:
    profile: payments
    backup_id: 20261231T230000Z
    reason: "legal: year-end 2026, keep until 2033"
    offsite:
      bucket: acme-db-backups
      region: eu-central-1

- name: Release it once the retention period is over
  lifeboat.backup.hold:
    profile: payments
    backup_id: 20261231T230000Z
    state: absent
"""

RETURN = r"""
hold:
  description: The backup and its hold.
  returned: success
  type: dict
  contains:
    id:
      description: Backup id.
      type: str
      sample: 20261231T230000Z
    profile:
      description: Profile of the backup.
      type: str
    held:
      description: Whether the backup is held now (in check mode, would be).
      type: bool
    hold:
      description: The hold (reason, by, since), or null when released.
      type: dict
      sample: {"reason": "legal: year-end 2026, keep until 2033", "by": "lifeboat", "since": "2026-12-31T23:10:00Z"}
    previous:
      description: The hold before this task, or null.
      type: dict
    offsite:
      description:
        - The bucket's copy (null without O(offsite)) - C(location), C(offsite) (whether the copy is there),
          C(object_lock) (whether the bucket has Object Lock), C(legal_hold) (objects whose legal hold was switched)
          and C(changed).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import hold as _hold
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config,
    offsite_of,
    offsite_source_argument_spec,
    run,
    storage_argument_spec,
)


def main():
    argument_spec = storage_argument_spec()
    argument_spec.update(
        profile=dict(type="str", required=True),
        backup_id=dict(type="str", required=True),
        reason=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    argument_spec.update(offsite_source_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["reason"])])
    params = module.params

    def action():
        config = build_config(params)
        if params["offsite"]:
            config["offsite"] = offsite_of(params["offsite"])
        if params["state"] == "present":
            result = _hold.hold(config, params["profile"], params["backup_id"], params["reason"], check_mode=module.check_mode)
        else:
            result = _hold.release(config, params["profile"], params["backup_id"], check_mode=module.check_mode)
        for warning in result["warnings"]:
            module.warn(warning)
        return {"changed": result["changed"], "hold": result}

    run(module, action)


if __name__ == "__main__":
    main()
