# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hold and release one backup (``lifeboat hold`` / ``release``, the hold module): Barman's ``keep``.

A held backup is kept by local and remote prune whatever the policy (rule ``hold: <reason>``). The hold lives in
``hold.json`` in the backup directory and, when the profile has an offsite bucket and the backup is there, in
``hold.json`` under its prefix, plus an Object Lock legal hold on each of its objects when the bucket has Object Lock.
A backup not offsite yet gets the remote hold from the push that copies it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._config.schema import effective_section
from .._offsite import hold as _remote_hold
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._report.audit import who
from .._store import catalog as _catalog
from .._store import hold as _hold
from .operation import Operation


def _offsite(config, profile):
    """The offsite section when holds go to the bucket too, else None."""
    section = effective_section(config, profile, "offsite") if profile in config["profiles"] else config["offsite"]
    if not section.get("bucket") or section.get("enabled") is False:
        return None
    return _remote.target(config, profile)


def remote_place(section, entry):
    """(Remote, Location) of a local backup's copy in the bucket."""
    return _s3.Remote(section), _remote.Location(section, entry.manifest["host"], entry.manifest["profile"])


def hold(config, profile, backup_id, reason, via="module", check_mode=False):
    """Hold backup ``backup_id`` of ``profile`` with ``reason``; ``changed`` only when the hold is new or its reason."""
    reason = _hold.check_reason(reason)
    entry = _catalog.resolve(config["backup_root"], profile, backup_id)
    return _change(config, entry, "hold", reason, via, check_mode)


def release(config, profile, backup_id, via="module", check_mode=False):
    """Release a held backup; releasing one that is not held changes nothing."""
    entry = _catalog.resolve(config["backup_root"], profile, backup_id)
    return _change(config, entry, "release", None, via, check_mode)


def _change(config, entry, action, reason, via, check_mode):
    profile = entry.manifest["profile"]
    current = entry.hold
    if action == "hold":
        document = current if current and current.get("reason") == reason else _hold.record(reason, who())
    else:
        document = None
    result = {"changed": current != document, "check_mode": check_mode, "profile": profile, "id": entry.id,
              "path": entry.path, "held": document is not None, "hold": document, "previous": current, "offsite": None,
              "warnings": []}
    with Operation(config, action, "%s backup %s of profile %s" % (action, entry.id, profile), via, check_mode, profile=profile,
                   database=entry.manifest["database"], backup_id=entry.id,
                   detail="reason: %s" % (reason if action == "hold" else (current or {}).get("reason", "not held"))) as op:
        if result["changed"] and not check_mode:
            if document:
                _hold.write(entry.path, document)
            else:
                _hold.remove(entry.path)
        section = _offsite(config, profile)
        if section:
            remote, loc = remote_place(section, entry)
            op.audit(target=remote.url(loc.prefix(entry.id)))
            if document:
                result["offsite"] = _remote_hold.apply(remote, loc, entry.id, document, check_mode)
            else:
                result["offsite"] = _remote_hold.lift(remote, loc, entry.id, check_mode)
            result["changed"] = result["changed"] or result["offsite"]["changed"]
    result["duration_seconds"] = op.duration
    result["warnings"] += op.warnings
    return result
