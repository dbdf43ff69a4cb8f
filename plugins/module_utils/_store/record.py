# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One backup record, wherever the backup lies: a directory under a profile, or a prefix in the bucket.

The catalog (_store/catalog.py) and the remote catalog (_offsite/remote.py) both
describe what they find with it; time, size and verification come from the
manifest the same way for both. A local record has ``path`` (its directory);
a remote one also has ``objects`` (what the listing showed), ``raw`` (the
manifest's bytes) and ``metadata`` (the manifest object's, set by the push).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import os
import time

from .._errors import VerifyError
from . import hold as _hold
from . import manifest as _manifest
from .retention import FAILED, OK, UNVERIFIED, verification_state

VERIFICATION = "verification.json"

COMPLETE = "complete"
DAMAGED = "damaged"
INCOMPLETE = "incomplete"
IN_PROGRESS = "in_progress"

META_VERIFIED = "lifeboat-verified"  # metadata of a remote manifest: the pushing host's verification state


class Backup:
    """One backup id: a complete backup, or something that is not (yet, or any more) one."""

    def __init__(self, path, status, manifest=None, error=None, backup_id=None, objects=None, raw=None, metadata=None):
        self.path = path  # local directory, or the s3:// address of the remote prefix
        self.id = backup_id or os.path.basename(path)
        self.status = status
        self.manifest = manifest
        self.error = error
        self.objects = objects  # remote only: name -> {"size", "modified"}
        self.raw = raw
        self.metadata = metadata or {}

    @property
    def remote(self):
        return self.objects is not None

    @property
    def time(self):
        """Snapshot time from the manifest; None without one."""
        return _manifest.backup_time(self.manifest) if self.manifest else None

    @property
    def size(self):
        if self.manifest:
            return sum(a["bytes"] for a in self.manifest["artifacts"])
        if self.remote:
            return sum(o["size"] for o in self.objects.values())
        return _du(self.path)

    @property
    def recipients(self):
        """The age recipients every encrypted artifact was encrypted to (any one's identity opens the backup)."""
        sets = [set(a.get("recipients") or ()) for a in (self.manifest or {}).get("artifacts", ()) if a["encryption"] == "age"]
        return sorted(set.intersection(*sets)) if sets else []

    @property
    def verification(self):
        """The local verification.json document (None when never verified, or remote)."""
        return None if self.remote else read_verification(self.path)

    @property
    def verified(self):
        """ok, failed or unverified: from verification.json, or remotely what the pushing host knew when it pushed."""
        if not self.remote:
            return verification_state(self.verification)
        state = self.metadata.get(META_VERIFIED)
        return state if state in (OK, FAILED) else UNVERIFIED

    @property
    def hold(self):
        """The hold document (reason, by, since) when ``lifeboat hold`` keeps this local backup, else None."""
        return _hold.read(self.path) if self.status == COMPLETE and not self.remote else None

    def age_seconds(self, now=None):
        """Age of a directory that is not a backup, from its modification time."""
        try:
            return (now or time.time()) - os.stat(self.path).st_mtime
        except OSError:
            return 0

    def summary(self):
        info = {"id": self.id, "status": self.status, "bytes": self.size}
        if self.remote:
            info["objects"] = len(self.objects)
        else:
            info["path"] = self.path
        if self.manifest:
            info.update(time=self.manifest["consistent_at"], database=self.manifest["database"], recipients=self.recipients)
            if self.remote:
                info["verification"] = self.verified
            else:
                info.update(duration_seconds=self.manifest.get("duration_seconds"),
                            encrypted=any(a["encryption"] != "none" for a in self.manifest["artifacts"]))
        if self.error:
            info["error"] = self.error
        if not self.remote:
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


def read_verification(backup_dir):
    try:
        with open(os.path.join(backup_dir, VERIFICATION), "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def check_place(document, where, **expected):
    """The manifest's own backup_id, profile (and host) must be where it lies; VerifyError naming the first that differs.

    A directory renamed by ``mv`` or a backup copied into another profile would otherwise restore, or be pushed,
    as the wrong one.
    """
    for field in ("backup_id", "profile", "host"):
        if field in expected and document.get(field) != expected[field]:
            raise VerifyError("manifest of %s records %s %r, but it lies where %s %r belongs (moved or copied by hand?); "
                              "put it back under its own %s" % (where, field, document.get(field), field, expected[field], field))
    return document


def newest(records):
    """The newest backup, complete or damaged, or None: what "latest" means when no id is given.

    Complete backups count by their snapshot time. A damaged one has no manifest to trust, so its id (the
    engine names a backup by its start time, to the second, with a suffix within one second) says when it was
    taken; one whose name is no such time cannot be placed and does not count.
    """
    complete = sorted((r for r in records if r.status == COMPLETE), key=lambda r: (r.time, r.id))
    best = complete[-1] if complete else None
    best_key = (int(best.time), best.id) if best else None
    for record in records:
        moment = _id_time(record.id) if record.status == DAMAGED else None
        if moment is not None and (best_key is None or (moment, record.id) > best_key):
            best, best_key = record, (moment, record.id)
    return best


def _id_time(backup_id):
    try:
        return calendar.timegm(time.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


def refuse_damaged_newest(record, profile):
    """VerifyError when the newest backup is damaged: never fall back to an older one without being told."""
    if record is not None and record.status == DAMAGED:
        raise VerifyError("the newest backup of profile %s, %s, is damaged (%s); name an older one by its id "
                          "(--id, or backup_id) to take it instead" % (profile, record.id, record.error))
    return record
