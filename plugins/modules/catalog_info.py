#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: catalog_info
short_description: List lifeboat backups and the health of each profile
version_added: 0.1.0
description:
  - Lists the backups under O(backup_root) per profile (id, time, size, status, last verification, hold) and a
    health summary (age of the newest backup, count, total size, newest verified backup, incomplete leftovers, held
    backups and their reasons, see M(lifeboat.backup.hold)).
  - Only directories with a valid manifest count as backups; others are reported as C(incomplete), C(damaged) or
    C(in_progress).
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.storage
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Read-only.
options:
  profile:
    description:
      - Only this profile. Default is every profile under O(backup_root).
    type: str
  query:
    description:
      - A JMESPath expression applied to RV(profiles), as the AWS CLI's C(--query); its value is returned in
        RV(query_result). For example V(shop.backups[?hold].id) lists the held backups of profile C(shop).
      - Needs the Python package C(jmespath) on the managed host (Debian C(python3-jmespath), a dependency of
        C(python3-boto3)).
    type: str
"""

EXAMPLES = r"""
- name: Read the catalog
  lifeboat.backup.catalog_info:
    backup_root: /var/backups/lifeboat
  register: catalog

- name: Ids of the held backups of every profile
  lifeboat.backup.catalog_info:
    query: "*.backups[?hold][].id"
  register: held

- name: Fail when the newest payments backup is older than two hours
  ansible.builtin.assert:
    that: catalog.profiles.payments.health.newest_age_seconds < 7200
"""

RETURN = r"""
profiles:
  description:
    - Per profile, its health summary and its backups (oldest first).
    - Each backup lists the age C(recipients) it was encrypted to; any one's identity opens it (C(lifeboat identities)
      says which retired identity some backup still needs).
  returned: always
  type: dict
  sample:
    payments:
      health:
        count: 24
        newest_id: 20261122T070000Z
        newest_age_seconds: 1260.4
        newest_verified_id: 20261122T070000Z
        total_bytes: 7340032
        incomplete: []
        in_progress: []
        held: {"20261231T230000Z": "legal: keep 7 years"}
      backups:
        - id: 20261122T070000Z
          status: complete
          bytes: 305812
          time: "2026-11-22T07:00:01.201938Z"
          recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
          verification:
            level: archive
            ok: true
          hold: null
query_result:
  description: What O(query) selects from RV(profiles).
  returned: when O(query) is set
  type: raw
  sample: ["20261231T230000Z"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import run, storage_argument_spec
from ansible_collections.lifeboat.backup.plugins.module_utils._front.query import compile_query, search
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import listing as _listing


def main():
    argument_spec = storage_argument_spec()
    argument_spec.update(profile=dict(type="str"), query=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def action():
        query = compile_query(params["query"], "query") if params["query"] else None
        result = {"changed": False, "profiles": _listing.report(params["backup_root"], params["profile"])}
        if query:
            result["query_result"] = search(query, result["profiles"])
        return result

    run(module, action)


if __name__ == "__main__":
    main()
