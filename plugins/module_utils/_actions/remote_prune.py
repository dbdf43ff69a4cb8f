# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remote retention: the same policy engine as local prune, applied to the bucket.

The plan comes from _retention over the remote backups (times from their
manifests, verification as the pushing host recorded it), so the newest good
backup is never deleted. A backup is deleted manifest first (it stops being a
backup at once), then its artifacts, every version on a versioned bucket.
Backups still under Object Lock retention or legal hold are reported and
skipped, one line each, never an error per object. A held backup (``hold.json``
under its prefix, see _offsite/hold.py) is kept on any bucket, Object Lock or not. Damaged remote backups are
left for an operator; leftovers of failed pushes (objects without manifest,
open multipart uploads) go once a day old.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from .._config.schema import get_profile
from .._offsite import hold as _remote_hold
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._store import catalog as _catalog
from .._store import retention as _retention
from .operation import Operation

LEFTOVER_MAX_AGE = 86400  # seconds: a push still running is never this old


def policy_for(config, profile):
    """offsite.retention (with the profile's overrides), else the profile's own retention; None when neither is set."""
    remote = _retention.configured(_remote.target(config, profile).get("retention"))
    if remote or profile not in config["profiles"]:
        return remote
    return _retention.configured(get_profile(config, profile)["retention"])


def prune(config, profile, policy=None, host=None, check_mode=False, via="module", now=None):
    """Plan (and unless ``check_mode`` apply) remote retention for one host's profile."""
    policy = _retention.normalize(policy if policy is not None else policy_for(config, profile))
    section = _remote.target(config, profile)
    loc = _remote.Location(section, host or config["host"], profile)
    now = now or time.time()
    result = {"changed": False, "check_mode": check_mode, "profile": profile, "host": loc.host, "policy": policy,
              "deleted": [], "kept": [], "skipped": [], "leftovers_removed": [], "freed_bytes": 0, "warnings": []}
    with Operation(config, "remote_prune", "prune profile %s offsite" % profile, via, check_mode, profile=profile) as op:
        op.on_failure(increment=["lifeboat_offsite_failures_total"])
        try:
            _plan_and_apply(section, loc, policy, check_mode, now, result, op)
        finally:  # what was deleted before a failure belongs in the audit line too
            op.audit(deleted=result["deleted"], kept=len(result["kept"]), bytes=result["freed_bytes"], detail=_detail(policy, result))
    result["duration_seconds"] = op.duration
    result["warnings"] += op.warnings
    return result


def _plan_and_apply(section, loc, policy, check_mode, now, result, op):
    remote = _s3.Remote(section)
    result["location"] = remote.url(loc.base)
    backups = _remote.scan(remote, loc)
    complete = [b for b in backups if b.status == _catalog.COMPLETE]
    op.audit(database=complete[-1].manifest["database"] if complete else None)
    fields, doomed = _retention.plan_for(complete, policy, lambda b: b.verified, lambda b: _remote_hold.reason(remote, loc, b))
    leftovers = _leftovers(remote, loc, backups, now, result["skipped"])
    uploads = [u for u in remote.uploads(loc.base) if _age(u[2], now) >= LEFTOVER_MAX_AGE]
    result.update(
        fields,
        leftovers_removed=[b.id for b in leftovers] + ["upload of %s" % upload[0][len(loc.base):] for upload in uploads],
        changed=bool(doomed or leftovers or uploads),
    )
    result["freed_bytes"] = sum(b.size for b in doomed + leftovers)
    if not check_mode and result["changed"]:
        _apply(remote, loc, doomed, leftovers, uploads, result, now)


def _age(moment, now):
    return now - moment.timestamp() if moment else 0


def _leftovers(remote, loc, backups, now, skipped):
    """Failed pushes a day old go; younger ones may be a push in progress; damaged ones are an operator's call.

    Listings can be partial, so a leftover is one whose manifest is absent when asked for by name.
    """
    remove = []
    for backup in backups:
        if backup.status == _catalog.COMPLETE:
            continue
        if backup.status == _catalog.DAMAGED:
            skipped.append({"id": backup.id, "status": backup.status, "reason": "manifest damaged; left for an operator (%s)" % backup.error})
            continue
        age = min(_age(o["modified"], now) for o in backup.objects.values())
        if age >= LEFTOVER_MAX_AGE and remote.head(loc.key(backup.id, _remote.MANIFEST)) is not None:
            skipped.append({"id": backup.id, "status": backup.status, "reason": "its manifest %s exists though the listing "
                            "missed it; nothing deleted" % remote.url(loc.key(backup.id, _remote.MANIFEST))})
        elif age >= LEFTOVER_MAX_AGE:
            remove.append(backup)
        else:
            skipped.append({"id": backup.id, "status": backup.status,
                            "reason": "no manifest: a push in progress or one that failed; removed once a day old (%.0fs)" % age})
    return remove


def _apply(remote, loc, doomed, leftovers, uploads, result, now):
    versioned = remote.versioned()
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    for backup in doomed + leftovers:
        head = remote.head(loc.key(backup.id, _remote.MANIFEST)) if backup.status == _catalog.COMPLETE else None
        until = _s3.locked(head, moment)
        if until:  # the manifest is uploaded last, so its retention outlasts the artifacts'
            _skip(result, backup, "under Object Lock until %s" % until)
            continue
        refused = _delete(remote, loc, backup, versioned)
        if refused:
            key = sorted(refused)[0]
            _skip(result, backup, "the store refused to delete %d objects, e.g. %s: %s" % (len(refused), remote.url(key), refused[key]))
    for key, upload_id, _initiated in uploads:
        remote.abort(key, upload_id)


def _delete(remote, loc, backup, versioned):
    """Manifest first, then everything else under the backup's prefix; returns {key: why} for refusals."""
    prefix = loc.prefix(backup.id)
    if versioned:
        keys = remote.versions(prefix)
    else:
        keys = [(prefix + name, None) for name in backup.objects]
    manifest_key = prefix + _remote.MANIFEST
    first = [k for k in keys if k[0] == manifest_key]
    refused = remote.delete(first) if first else {}
    if refused:
        return refused
    return remote.delete([k for k in keys if k[0] != manifest_key])


def _skip(result, backup, reason):
    for name in ("deleted", "leftovers_removed"):
        if backup.id in result[name]:
            result[name].remove(backup.id)
    result["freed_bytes"] -= backup.size
    result["skipped"].append({"id": backup.id, "status": backup.status, "reason": reason})


def _detail(policy, result):
    detail = "%s policy %s" % (result.get("location") or "offsite", _retention.describe(policy))
    if result["skipped"]:
        detail += "; skipped %s" % ", ".join("%s (%s)" % (s["id"], s["reason"]) for s in result["skipped"])
    return detail
