# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a retention plan to one profile directory.

What prune never deletes, whatever the policy says:

- the newest backup that passed verification (_retention guarantees it);
- a held backup (``lifeboat hold``), kept with the rule ``hold: <reason>``;
- a backup being written: while the profile lock is held, no ``.partial``
  directory is touched, however old it looks;
- directories it cannot prove to be backups or dead leftovers: ``incomplete``
  (no manifest) and ``damaged`` (manifest fails its checksum) directories are
  reported and left for an operator. A damaged manifest can sit next to
  intact artifacts that are the only copy of that day, and a directory
  without a manifest may be someone's manual copy;
- anything, when the policy is empty or all zero (a ConfigError).

Leftover ``.partial`` directories of dead runs (lock free, nothing in them
modified for a day) are removed and reported. Prune does not take the
profile lock: it must never make a scheduled backup fail with "another run
in progress".

A backup is deleted by renaming it to a hidden ``.deleting-<id>`` name first
(atomic: it stops being a backup at once), then removing the tree; a prune
interrupted half-way leaves only that hidden directory, which the next prune
removes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from .._errors import ConfigError, StorageError
from .._store import catalog as _catalog
from .._store import retention as _retention
from .._store.files import is_locked, storage_error
from .operation import Operation

PARTIAL_MAX_AGE = 86400  # seconds without a write before a .partial of a dead run is removed
DELETING = ".deleting-"


def prune(config, profile_name, policy, check_mode=False, via="module", now=None):
    """Plan (and unless ``check_mode`` apply) retention for one profile; returns the result dict."""
    try:
        policy = _retention.normalize(policy)  # before looking at anything: an empty policy deletes nothing
    except ConfigError as exc:
        raise ConfigError("profile %s: %s" % (profile_name, exc))
    started = time.time()
    now = now or started
    root = config["backup_root"]
    directory = _catalog.profile_dir(root, profile_name)
    entries = _catalog.scan(root, profile_name)
    complete = [e for e in entries if e.status == _catalog.COMPLETE]
    fields, doomed = _retention.plan_for(complete, policy, lambda e: e.verified, lambda e: (e.hold or {}).get("reason"))
    leftovers, skipped = _leftovers(directory, entries, now)
    result = dict(
        fields,
        changed=bool(doomed or leftovers),
        check_mode=check_mode,
        profile=profile_name,
        path=directory,
        policy=policy,
        leftovers_removed=[os.path.basename(p) for p in leftovers],
        skipped=skipped,
        freed_bytes=sum(e.size for e in doomed) + sum(_catalog.Backup(p, _catalog.INCOMPLETE).size for p in leftovers),
        warnings=[],
    )
    if check_mode:
        return result
    database = complete[-1].manifest["database"] if complete else None  # None: no label, and nothing to prune
    with Operation(config, "prune", "prune profile %s" % profile_name, via,
                   profile=profile_name, database=database, deleted=result["deleted"], kept=len(result["kept"]),
                   bytes=result["freed_bytes"], detail=_detail(policy, result)) as op:
        op.on_failure(increment=["lifeboat_prune_failures_total"])
        failures = _apply(directory, doomed, leftovers, result)
        op.audit(kept=len(result["kept"]), bytes=result["freed_bytes"])
        if failures:
            raise StorageError("; ".join(failures))
        op.on_success(values={"lifeboat_prune_last_success_timestamp_seconds": time.time(), "lifeboat_prune_kept_backups": len(result["kept"])},
                      increment={"lifeboat_prune_deleted_total": len(result["deleted"])})
    result["duration_seconds"] = op.duration
    result["warnings"] += op.warnings
    return result


def _newest_mtime(path):
    """Newest modification time in a tree: a live writer touches its files, not only the directory."""
    newest = 0.0
    for base, _dirs, files in os.walk(path):
        for name in [base] + [os.path.join(base, f) for f in files]:
            try:
                newest = max(newest, os.lstat(name).st_mtime)
            except OSError:
                pass
    return newest


def _leftovers(directory, entries, now):
    """(paths to remove, [skipped entries with a reason]) among the directories that are not backups."""
    remove, skipped = [], []
    locked = is_locked(directory)
    for entry in entries:
        if entry.status == _catalog.COMPLETE:
            continue
        if entry.id.endswith(_catalog.PARTIAL):
            age = now - _newest_mtime(entry.path)
            if locked:
                skipped.append({"id": entry.id, "status": _catalog.IN_PROGRESS, "reason": "a run of this profile is writing it"})
            elif age < PARTIAL_MAX_AGE:
                skipped.append({"id": entry.id, "status": entry.status,
                                "reason": "leftover of a failed run, removed once a day old (now %.1fh)" % (age / 3600.0)})
            else:
                remove.append(entry.path)
            continue
        reason = ("no manifest: not a backup; left for an operator to inspect" if entry.status == _catalog.INCOMPLETE
                  else "manifest damaged; left for an operator to inspect (%s)" % entry.error)
        skipped.append({"id": entry.id, "status": entry.status, "reason": reason})
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    remove += [os.path.join(directory, n) for n in sorted(names) if n.startswith(DELETING)]  # interrupted prunes
    return remove, skipped


def _apply(directory, doomed, leftovers, result):
    """Delete; returns one message per failure so one stubborn directory does not stop the rest."""
    failures = []
    if leftovers and is_locked(directory):
        leftovers = [p for p in leftovers if os.path.basename(p).startswith(DELETING)]  # a run started meanwhile
    for entry in doomed:
        hold = entry.hold  # read again: ``lifeboat hold`` may have run since the plan was made
        if hold:
            _spare(result, entry, "held while prune ran: %s" % hold["reason"])
            continue
        hidden = os.path.join(directory, DELETING + entry.id)
        try:
            os.rename(entry.path, hidden)
        except OSError as exc:
            failures.append(str(storage_error("delete backup", entry.path, exc)))
            continue
        failures += _remove(hidden)
    for path in leftovers:
        failures += _remove(path)
    return failures


def _spare(result, entry, reason):
    for backup in result["backups"]:
        if backup["id"] == entry.id:
            backup.update(action="keep", rules=[reason])
    result["deleted"].remove(entry.id)
    result["kept"].append(entry.id)
    result["freed_bytes"] -= entry.size
    result["skipped"].append({"id": entry.id, "status": entry.status, "reason": reason})


def _remove(path):
    errors = []
    shutil.rmtree(path, onerror=lambda func, name, info: errors.append(storage_error("remove", name, info[1])))
    return [str(e) for e in errors[:1]]


def _detail(policy, result):
    detail = "policy %s" % _retention.describe(policy)
    if result["leftovers_removed"]:
        detail += "; removed leftovers %s" % ", ".join(result["leftovers_removed"])
    return detail
