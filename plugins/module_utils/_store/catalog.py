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

import json
import os
import time

from .._config.schema import PROFILE_NAME, check_profile_name
from .._errors import LifeboatError, NotFoundError, VerifyError
from . import hold as _hold
from . import manifest as _manifest
from .files import PARTIAL, atomic_write_json, is_locked

VERIFICATION = "verification.json"

COMPLETE = "complete"
DAMAGED = "damaged"
INCOMPLETE = "incomplete"
IN_PROGRESS = "in_progress"


class Entry:
    """One directory under a profile: a backup, or something that is not (yet) one."""

    def __init__(self, path, status, manifest=None, error=None):
        self.path = path
        self.id = os.path.basename(path)
        self.status = status
        self.manifest = manifest
        self.error = error

    @property
    def time(self):
        """Snapshot time from the manifest; None for anything that is not a complete backup."""
        return _manifest.backup_time(self.manifest) if self.manifest else None

    @property
    def size(self):
        return sum(a["bytes"] for a in self.manifest["artifacts"]) if self.manifest else _du(self.path)

    @property
    def verification(self):
        return read_verification(self.path)

    @property
    def hold(self):
        """The hold document (reason, by, since) when ``lifeboat hold`` keeps this backup, else None."""
        return _hold.read(self.path) if self.status == COMPLETE else None

    def age_seconds(self, now=None):
        """Age of a directory that is not a backup, from its modification time."""
        try:
            return (now or time.time()) - os.stat(self.path).st_mtime
        except OSError:
            return 0

    def summary(self):
        info = {"id": self.id, "path": self.path, "status": self.status, "bytes": self.size}
        if self.manifest:
            info.update(
                time=self.manifest["consistent_at"],
                database=self.manifest["database"],
                duration_seconds=self.manifest.get("duration_seconds"),
                encrypted=any(a["encryption"] != "none" for a in self.manifest["artifacts"]),
            )
        if self.error:
            info["error"] = self.error
        info["verification"] = self.verification
        info["hold"] = self.hold
        return info


def _du(path):
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass
    return total


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
            other.append(Entry(path, DAMAGED, error="a symbolic link, not a backup directory lifeboat made; remove it"))
            continue
        if not os.path.isdir(path):
            continue
        if name.endswith(PARTIAL):
            if locked is None:
                locked = is_locked(directory)
            other.append(Entry(path, IN_PROGRESS if locked else INCOMPLETE))
            continue
        try:
            complete.append(Entry(path, COMPLETE, manifest=_manifest.read(path)))
        except NotFoundError:
            other.append(Entry(path, INCOMPLETE, error="no manifest"))
        except VerifyError as exc:
            other.append(Entry(path, DAMAGED, error=str(exc)))
    complete.sort(key=lambda e: (e.time, e.id))
    return complete + other


def complete_backups(backup_root, profile):
    return [e for e in scan(backup_root, profile) if e.status == COMPLETE]


def resolve(backup_root=None, profile=None, backup_id=None, path=None):
    """Find one complete backup: by ``path``, or by profile and id (default: the newest)."""
    if path:
        if not os.path.isdir(path):
            raise NotFoundError("backup directory %s does not exist" % path)
        return Entry(path, COMPLETE, manifest=_manifest.read(path))
    if not profile:
        raise LifeboatError("name a backup: give path, or profile (and optionally backup_id)")
    backups = complete_backups(backup_root, profile)
    if backup_id:
        for entry in backups:
            if entry.id == backup_id:
                return entry
        raise NotFoundError("backup %s of profile %s not found under %s" % (backup_id, profile, backup_root))
    if not backups:
        raise NotFoundError("profile %s has no complete backup under %s" % (profile, backup_root))
    return backups[-1]


def read_verification(backup_dir):
    try:
        with open(os.path.join(backup_dir, VERIFICATION), "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


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
