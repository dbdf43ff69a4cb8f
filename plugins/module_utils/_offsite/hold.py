# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holds in the bucket: a ``hold.json`` object under the backup's prefix, and Object Lock legal holds.

``hold.json`` is what remote prune reads (any bucket); on a bucket with Object Lock every object of the backup also
gets a legal hold, so not even a prune by hand or a stolen key can delete it before ``lifeboat release``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._errors import OffsiteError
from .._store import hold as _hold
from . import remote as _remote

HOLD = _hold.HOLD


def reason(remote, loc, backup):
    """The hold reason of a RemoteBackup, read from its ``hold.json``; None when it has none."""
    if HOLD not in backup.objects:
        return None
    raw, _meta = remote.get(loc.key(backup.id, HOLD))
    return _hold.parse(raw)["reason"] if raw is not None else None


def _objects(remote, loc, backup_id):
    """Names of the backup's objects (hold.json aside), or None when its manifest is not in the bucket."""
    listed = _remote.group_by_backup(remote.list(loc.prefix(backup_id)), loc.base).get(backup_id, {})
    if _remote.MANIFEST not in listed:
        return None
    return sorted(name for name in listed if name != HOLD), HOLD in listed


def _legal(remote, loc, backup_id, names, on, check_mode):
    """Object names whose legal hold is (or would be) switched to ``on``."""
    switched = []
    for name in names:
        head = remote.head(loc.key(backup_id, name)) or {}
        if (head.get("ObjectLockLegalHoldStatus") == "ON") != on:
            switched.append(name)
            if not check_mode:
                remote.legal_hold(loc.key(backup_id, name), on)
    return switched


def apply(remote, loc, backup_id, document, check_mode=False):
    """Put the hold on the remote copy of a backup; returns what changed (nothing when it is not offsite yet)."""
    found = _objects(remote, loc, backup_id)
    state = {"location": remote.url(loc.prefix(backup_id)), "offsite": found is not None, "changed": False,
             "legal_hold": [], "object_lock": None}
    if found is None:
        return state  # the push of a held backup puts the hold on (see _actions/push.py)
    names, has_hold = found
    key = loc.key(backup_id, HOLD)
    current = _hold.parse(remote.get(key)[0] or b"{}") if has_hold else None
    if current is None or current.get("reason") != document["reason"]:
        state["changed"] = True
        if not check_mode:
            remote.put(key, _hold.encode(document), {})
    state["object_lock"] = remote.object_lock_enabled()
    if state["object_lock"]:
        state["legal_hold"] = _legal(remote, loc, backup_id, names, True, check_mode)
        state["changed"] = state["changed"] or bool(state["legal_hold"])
    return state


def lift(remote, loc, backup_id, check_mode=False):
    """Release the remote copy: legal holds off, then ``hold.json`` deleted (so prune may act again)."""
    found = _objects(remote, loc, backup_id)
    state = {"location": remote.url(loc.prefix(backup_id)), "offsite": found is not None, "changed": False,
             "legal_hold": [], "object_lock": None}
    if found is None:
        return state
    names, has_hold = found
    state["object_lock"] = remote.object_lock_enabled()
    if state["object_lock"]:
        state["legal_hold"] = _legal(remote, loc, backup_id, names, False, check_mode)
    if has_hold and not check_mode:
        refused = remote.delete([(loc.key(backup_id, HOLD), None)])
        if refused:
            raise OffsiteError("cannot delete %s: %s" % (remote.url(loc.key(backup_id, HOLD)), refused[loc.key(backup_id, HOLD)]))
    state["changed"] = has_hold or bool(state["legal_hold"])
    return state
