# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What backups exist under a backup root, and how healthy they are.

Layout: ``<backup_root>/<profile>/<backup_id>/`` holding the artifacts,
``manifest.json`` (written last) and ``verification.json`` (the latest
verification result). ``<backup_id>.partial/`` is a backup being written,
or the leftover of one that died.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from .._config.schema import PROFILE_NAME, check_profile_name
from .._errors import LifeboatError, NotFoundError, VerifyError
from . import manifest as _manifest
from .files import PARTIAL, atomic_write_json, is_locked
from .record import COMPLETE, DAMAGED, IN_PROGRESS, INCOMPLETE, VERIFICATION, Backup, check_place, newest, read_verification, refuse_damaged_newest

__all__ = ["COMPLETE", "DAMAGED", "INCOMPLETE", "IN_PROGRESS", "Backup", "read_verification"]  # re-exported


def profile_dir(backup_root, profile):
    return os.path.join(backup_root, check_profile_name(profile))


def profiles(backup_root):
    try:
        names = os.listdir(backup_root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if PROFILE_NAME.match(n) and os.path.isdir(os.path.join(backup_root, n)))


def scan(backup_root, profile):
    """All entries of a profile: complete backups ordered by snapshot time, then the rest."""
    directory = profile_dir(backup_root, profile)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    locked = None
    complete, other = [], []
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith("."):
            continue
        if os.path.islink(path):  # planted by someone else: what it points to is no backup of this profile
            other.append(Backup(path, DAMAGED, error="a symbolic link, not a backup directory lifeboat made; remove it"))
            continue
        if not os.path.isdir(path):
            continue
        if name.endswith(PARTIAL):
            if locked is None:
                locked = is_locked(directory)
            other.append(Backup(path, IN_PROGRESS if locked else INCOMPLETE))
            continue
        try:
            complete.append(Backup(path, COMPLETE, manifest=_read(path, profile=profile)))
        except NotFoundError:
            other.append(Backup(path, INCOMPLETE, error="no manifest"))
        except VerifyError as exc:
            other.append(Backup(path, DAMAGED, error=str(exc)))
    complete.sort(key=lambda e: (e.time, e.id))
    return complete + other


def _read(path, **place):
    """The manifest of a backup directory, checked against where it lies: its name (and its profile directory)."""
    return check_place(_manifest.read(path), path, backup_id=os.path.basename(os.path.normpath(path)), **place)


def complete_backups(backup_root, profile):
    return [e for e in scan(backup_root, profile) if e.status == COMPLETE]


def resolve(backup_root=None, profile=None, backup_id=None, path=None):
    """Find one complete backup: by ``path``, or by profile and id (default: the newest, which must not be damaged)."""
    if path:
        if not os.path.isdir(path):
            raise NotFoundError("backup directory %s does not exist" % path)
        return Backup(path, COMPLETE, manifest=_read(path))
    if not profile:
        raise LifeboatError("name a backup: give path, or profile (and optionally backup_id)")
    entries = scan(backup_root, profile)
    backups = [e for e in entries if e.status == COMPLETE]
    if backup_id:
        for entry in entries:
            if entry.id == backup_id and entry.status == COMPLETE:
                return entry
            if entry.id == backup_id and entry.status == DAMAGED:
                raise VerifyError("backup %s of profile %s is damaged: %s" % (backup_id, profile, entry.error))
        raise NotFoundError("backup %s of profile %s not found under %s" % (backup_id, profile, backup_root))
    if not backups:  # nothing older to fall back to: no complete backup is the whole story
        raise NotFoundError("profile %s has no complete backup under %s" % (profile, backup_root))
    return refuse_damaged_newest(newest(entries), profile)


def record_verification(backup_dir, result):
    atomic_write_json(os.path.join(backup_dir, VERIFICATION), result)


def health(backup_root, profile, now=None):
    """Per-profile summary for catalog_info and the CLI's ``list``."""
    now = now or time.time()
    entries = scan(backup_root, profile)
    backups = [e for e in entries if e.status == COMPLETE]
    verified = [e for e in backups if (e.verification or {}).get("ok")]
    newest = backups[-1] if backups else None
    return {
        "profile": profile,
        "count": len(backups),
        "total_bytes": sum(e.size for e in backups),
        "newest_id": newest.id if newest else None,
        "newest_age_seconds": round(now - newest.time, 1) if newest else None,
        "newest_verified_id": verified[-1].id if verified else None,
        "incomplete": [e.id for e in entries if e.status in (INCOMPLETE, DAMAGED)],
        "in_progress": [e.id for e in entries if e.status == IN_PROGRESS],
        "held": dict((e.id, e.hold["reason"]) for e in backups if e.hold),
    }


def report(backup_root, profile, now=None):
    """Health plus every entry, as catalog_info and ``lifeboat list --json`` show it."""
    return {"health": health(backup_root, profile, now), "backups": [e.summary() for e in scan(backup_root, profile)]}
