# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push one local backup offsite (``lifeboat push``, the offsite module, the scheduled run).

A push uploads the artifacts first, compares the stored sizes and SHA-256
checksums with the manifest, and uploads the manifest last, so the remote
copy becomes a backup in one step (see _offsite/remote.py for the layout).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from .._errors import ConfigError, LifeboatError, NotFoundError, OffsiteError, VerifyError
from .._offsite import hold as _remote_hold
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._report import metrics as _metrics
from .._store import manifest as _manifest
from .operation import Operation

# -- push ----------------------------------------------------------------------------------------------------------------


def _extra(section, backup_id):
    """Arguments every upload carries: storage class, encryption, Object Lock."""
    extra = {}
    if section.get("storage_class"):
        extra["StorageClass"] = section["storage_class"]
    if section.get("server_side_encryption"):
        extra["ServerSideEncryption"] = section["server_side_encryption"]
    if section.get("sse_kms_key_id"):
        extra["SSEKMSKeyId"] = section["sse_kms_key_id"]
    if section.get("object_lock_mode"):
        extra["ObjectLockMode"] = section["object_lock_mode"]
        extra["ObjectLockRetainUntilDate"] = _s3.lock_until(section["object_lock_days"])
    return extra


def _remote_state(head, item):
    """Whether an existing object is this artifact: 'ok', 'missing' or why it differs."""
    if head is None:
        return "missing"
    if head.get("ContentLength") != item["bytes"]:
        return "is %s bytes, the manifest records %d" % (head.get("ContentLength"), item["bytes"])
    if (head.get("Metadata") or {}).get(_remote.META_SHA) != item["sha256"]:
        return "was not uploaded from this artifact"
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum and checksum != _s3.hex_to_b64(item["sha256"]):
        return "has a SHA-256 different from the manifest's"
    return "ok"


def _proved(head):
    """True when the store computed a SHA-256 of the whole object (a multipart one has a checksum of its parts)."""
    checksum = head.get("ChecksumSHA256")
    return bool(checksum) and "-" not in checksum


def _read_back(remote, key, item):
    size, sha256 = remote.digest(key)
    if (size, sha256) != (item["bytes"], item["sha256"]):
        return "does not match the manifest's SHA-256 when read back (corrupted in place)"
    return "ok"


def _local_manifest(entry):
    path = os.path.join(entry.path, _remote.MANIFEST)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise NotFoundError("cannot read %s: %s" % (path, exc.strerror or exc))
    if _manifest.parse(raw, entry.path).get(_manifest.SEAL) != entry.manifest.get(_manifest.SEAL):
        raise VerifyError("manifest of %s changed while it was being pushed" % entry.path)
    return raw


def push(config, entry, via="module", check_mode=False):
    """Push one complete local backup; uploads nothing when an identical copy is already there."""
    manifest = entry.manifest
    profile = manifest["profile"]
    section = _remote.target(config, profile)
    if profile in config["profiles"] and section.get("enabled") is False:
        raise ConfigError("offsite.enabled: offsite copies are disabled for profile %s" % profile)
    loc = _remote.Location(section, manifest["host"], profile)
    where = "s3://%s" % section["bucket"]
    doing = "push backup %s of profile %s to %%s" % (entry.id, profile)
    with Operation(config, "push", doing % where, via, check_mode,
                   profile=profile, database=manifest["database"], backup_id=entry.id, target=where) as op:
        op.on_failure(increment=["lifeboat_offsite_failures_total"])
        remote = _s3.Remote(section)
        where = remote.url(loc.prefix(entry.id))
        op.message = "Failed to " + doing % where  # the exact prefix, once the client knows it
        op.audit(target=where)
        result = _push(section, remote, loc, entry, check_mode)
        op.audit(bytes=result["uploaded_bytes"], detail="uploaded %d objects" % len(result["uploaded"]) if result["changed"] else "already offsite")
    if not check_mode:
        result["warnings"] += op.warnings + _push_metrics(config, manifest)
    result["duration_seconds"] = op.duration
    return result


def _push(section, remote, loc, entry, check_mode):
    manifest = entry.manifest
    raw = _local_manifest(entry)
    listed = _remote.group_by_backup(remote.list(loc.prefix(entry.id)), loc.base).get(entry.id, {})
    remote_raw = None
    if _remote.MANIFEST in listed:
        remote_raw = remote.get(loc.key(entry.id, _remote.MANIFEST))[0]
        if remote_raw is not None and remote_raw != raw:
            raise OffsiteError("a different backup with id %s is already there; refusing to overwrite it" % entry.id)
    warnings = []
    states = {}
    for item in manifest["artifacts"]:
        key = loc.key(entry.id, item["name"])
        head = remote.head(key) if item["name"] in listed else None
        states[item["name"]] = _remote_state(head, item)
        if states[item["name"]] == "ok" and not _proved(head):
            # Size and metadata say nothing about the bytes: read them back before calling them offsite.
            states[item["name"]] = _read_back(remote, key, item)
            warnings = ["%s keeps no whole-object SHA-256 checksum; read the objects back to compare" % remote.endpoint]
    todo = [item for item in manifest["artifacts"] if states[item["name"]] != "ok"]
    result = {
        "changed": bool(todo) or remote_raw is None,
        "id": entry.id,
        "profile": loc.profile,
        "host": loc.host,
        "location": remote.url(loc.prefix(entry.id)),
        "uploaded": [item["name"] for item in todo] + ([_remote.MANIFEST] if todo or remote_raw is None else []),
        "uploaded_bytes": sum(item["bytes"] for item in todo) + (len(raw) if todo or remote_raw is None else 0),
        "bytes": sum(a["bytes"] for a in manifest["artifacts"]),
        "remote_state": states,
        "warnings": warnings,
    }
    if check_mode or not result["changed"]:
        return result
    for key, upload_id, _initiated in remote.uploads(loc.prefix(entry.id)):
        remote.abort(key, upload_id)  # left by a push that died; a retry starts clean
    if remote_raw is not None:
        # A damaged remote copy: it stops being a backup before it is repaired.
        remote.delete([(loc.key(entry.id, _remote.MANIFEST), None)])
    extra = _extra(section, entry.id)
    part_size = section["part_size_mb"] * _s3.MIB
    expected = {}
    for item in manifest["artifacts"]:
        if item in todo:
            meta = dict(extra, Metadata={_remote.META_SHA: item["sha256"]})
            expected[item["name"]] = remote.upload(loc.key(entry.id, item["name"]), os.path.join(entry.path, item["name"]),
                                                   item, part_size, meta)
    for item in manifest["artifacts"]:
        _confirm(remote, loc.key(entry.id, item["name"]), item, expected.get(item["name"]))
    verified = entry.verified
    checksum = remote.put(loc.key(entry.id, _remote.MANIFEST), raw, dict(extra, Metadata={_remote.META_VERIFIED: verified}))
    head = remote.head(loc.key(entry.id, _remote.MANIFEST))
    if head is None or head.get("ContentLength") != len(raw) or head.get("ChecksumSHA256") not in (None, checksum):
        remote.delete([(loc.key(entry.id, _remote.MANIFEST), None)])
        raise OffsiteError("manifest %s was not stored intact" % remote.url(loc.key(entry.id, _remote.MANIFEST)))
    if entry.hold:  # held before it was offsite: the copy is held too (lifeboat hold)
        _remote_hold.apply(remote, loc, entry.id, entry.hold)
    return result


def _confirm(remote, key, item, checksum):
    """After upload: the stored object has the manifest's size and the checksum we computed."""
    head = remote.head(key)
    state = _remote_state(head, item)
    if state != "ok":
        raise OffsiteError("object %s %s after upload" % (remote.url(key), state))
    stored = head.get("ChecksumSHA256")
    if checksum and stored and stored != checksum:
        raise OffsiteError("object %s has checksum %s after upload, expected %s" % (remote.url(key), stored, checksum))


def _push_metrics(config, manifest):
    try:
        previous = _metrics.read(config["metrics_dir"], manifest["profile"]).get("lifeboat_offsite_last_backup_timestamp_seconds", 0)
        _metrics.update(config["metrics_dir"], manifest["profile"], manifest["database"], values={
            "lifeboat_offsite_last_success_timestamp_seconds": time.time(),
            "lifeboat_offsite_last_backup_timestamp_seconds": max(previous, _manifest.backup_time(manifest)),
            "lifeboat_offsite_bytes": sum(a["bytes"] for a in manifest["artifacts"]),
        })
    except LifeboatError as exc:
        return [str(exc)]
    return []
