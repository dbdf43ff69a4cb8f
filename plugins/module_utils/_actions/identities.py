# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``lifeboat identities``: which age identity opens which backup, after a recipient rotation (docs/rotation.md).

Each manifest records the recipients its artifacts were encrypted to. A recipient no longer in the configuration
is retired; its identity must be kept while some backup opens with no current recipient's identity, and may go once
none does. Read-only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._store import catalog as _catalog


def report(config, profile=None):
    """{"recipients": [{recipient, current, opens, needed_by}], "unencrypted": n}, over the local backups."""
    current = set(r.strip() for r in config["encryption"]["recipients"])
    names = [profile] if profile else _catalog.profiles(config["backup_root"])
    seen = dict((r, {"recipient": r, "current": True, "opens": [], "needed_by": []}) for r in sorted(current))
    unencrypted = 0
    for name in names:
        for backup in _catalog.scan(config["backup_root"], name):
            if backup.status != _catalog.COMPLETE:
                continue
            if not backup.recipients:
                unencrypted += 1
            label = "%s/%s" % (name, backup.id)
            only_retired = not current.intersection(backup.recipients)
            for recipient in backup.recipients:
                item = seen.setdefault(recipient, {"recipient": recipient, "current": False, "opens": [], "needed_by": []})
                item["opens"].append(label)
                if only_retired:
                    item["needed_by"].append(label)
    return {"recipients": sorted(seen.values(), key=lambda i: (not i["current"], i["recipient"])), "unencrypted": unencrypted}
