# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offsite copies in S3-compatible object storage: push, pull and the remote catalog.

The bucket mirrors the local layout: ``<prefix>/<host>/<profile>/<backup_id>/``.
A push uploads the artifacts first, compares the stored sizes and SHA-256
checksums with the manifest, and uploads the manifest last: like on disk, a
remote backup without its manifest does not exist. A pull (_offsite_pull)
checks every artifact before it writes the manifest locally; remote
retention lives in _offsite_prune.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from . import _audit, _catalog, _manifest, _metrics, _retention, _s3
from ._config import effective_section
from ._errors import ConfigError, LifeboatError, NotFoundError, OffsiteError, VerifyError

MANIFEST = _manifest.MANIFEST
META_SHA = "lifeboat-sha256"  # boto3 lower-cases metadata keys; so do we
META_VERIFIED = "lifeboat-verified"
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")

_metrics.register("lifeboat_offsite_last_success_timestamp_seconds", "gauge", "Unix time of the last successful push offsite.")
_metrics.register("lifeboat_offsite_last_backup_timestamp_seconds", "gauge",
                  "Snapshot time of the newest backup pushed offsite (offsite lag is now minus this).")
_metrics.register("lifeboat_offsite_bytes", "gauge", "Size of the artifacts of the last backup pushed offsite.")
_metrics.register("lifeboat_offsite_failures_total", "counter", "Failed pushes offsite and remote prunes.")


# -- target and layout ---------------------------------------------------------------------------------------------------

def target(config, profile=None):
    """The offsite settings for ``profile`` (top level with the profile's overrides), checked."""
    if profile and profile in config["profiles"]:
        section = effective_section(config, profile, "offsite")
    else:  # a DR host pulling a profile it does not run itself
        section = dict(config["offsite"])
    if not section.get("bucket"):
        raise ConfigError("offsite.bucket: not set; configure the offsite section (bucket, endpoint_url, credentials)")
    if section.get("sse_kms_key_id") and section.get("server_side_encryption") != "aws:kms":
        raise ConfigError("offsite.sse_kms_key_id: needs server_side_encryption 'aws:kms'")
    if bool(section.get("object_lock_mode")) != bool(section.get("object_lock_days")):
        raise ConfigError("offsite: object_lock_mode and object_lock_days go together; set both or neither")
    return section


def enabled(config, profile):
    """True when the scheduled run of ``profile`` pushes offsite."""
    section = effective_section(config, profile, "offsite")
    return bool(section.get("bucket")) and section.get("enabled") is not False


def check_host(host):
    if not isinstance(host, str) or not HOST_NAME.match(host):
        raise ConfigError("host: %r cannot be part of an object key; use letters, digits, '.', '-' or '_'" % (host,))
    return host


class Location:
    """Keys of one host's profile in the bucket."""

    def __init__(self, section, host, profile):
        parts = [p for p in (section.get("prefix") or "").strip("/").split("/") if p]
        self.profile = profile
        self.host = check_host(host)
        self.base = "/".join(parts + [self.host, profile]) + "/"

    def prefix(self, backup_id):
        return "%s%s/" % (self.base, backup_id)

    def key(self, backup_id, name):
        return self.prefix(backup_id) + name


class RemoteBackup:
    """One backup id found under a profile in the bucket."""

    def __init__(self, backup_id, objects, status, manifest=None, raw=None, metadata=None, error=None):
        self.id = backup_id
        self.objects = objects  # name -> {"size", "modified"}
        self.status = status
        self.manifest = manifest
        self.raw = raw
        self.metadata = metadata or {}
        self.error = error

    @property
    def time(self):
        return _manifest.backup_time(self.manifest) if self.manifest else None

    @property
    def size(self):
        if self.manifest:
            return sum(a["bytes"] for a in self.manifest["artifacts"])
        return sum(o["size"] for o in self.objects.values())

    @property
    def verification(self):
        """What the pushing host knew when it pushed: ok, failed or unverified."""
        return self.metadata.get(META_VERIFIED) if self.metadata.get(META_VERIFIED) in ("ok", "failed") else "unverified"

    def summary(self):
        info = {"id": self.id, "status": self.status, "bytes": self.size, "objects": len(self.objects)}
        if self.manifest:
            info.update(time=self.manifest["consistent_at"], database=self.manifest["database"], verification=self.verification)
        if self.error:
            info["error"] = self.error
        return info


def _group(objects, base):
    groups = {}
    for key, info in objects.items():
        rest = key[len(base):]
        if "/" in rest:
            backup_id, name = rest.split("/", 1)
            groups.setdefault(backup_id, {})[name] = info
    return groups


def _describe(remote, loc, backup_id, objects):
    if MANIFEST not in objects:
        return RemoteBackup(backup_id, objects, _catalog.INCOMPLETE, error="no manifest")
    key = loc.key(backup_id, MANIFEST)
    raw, metadata = remote.get(key)
    if raw is None:
        return RemoteBackup(backup_id, objects, _catalog.INCOMPLETE, error="no manifest")
    try:
        manifest = _manifest.parse(raw, remote.url(key))
    except VerifyError as exc:
        return RemoteBackup(backup_id, objects, _catalog.DAMAGED, error=str(exc))
    return RemoteBackup(backup_id, objects, _catalog.COMPLETE, manifest, raw, metadata)


def scan(remote, loc):
    """Every backup id of the profile in the bucket: complete ones by snapshot time, then the rest."""
    groups = _group(remote.list(loc.base), loc.base)
    found = [_describe(remote, loc, backup_id, objects) for backup_id, objects in sorted(groups.items())]
    complete = sorted((b for b in found if b.status == _catalog.COMPLETE), key=lambda b: (b.time, b.id))
    return complete + [b for b in found if b.status != _catalog.COMPLETE]


def find(remote, loc, backup_id=None):
    """One complete remote backup: by id, or the newest by snapshot time."""
    if backup_id:
        objects = _group(remote.list(loc.prefix(backup_id)), loc.base).get(backup_id, {})
        found = _describe(remote, loc, backup_id, objects)
        if found.status == _catalog.COMPLETE:
            return found
        if found.status == _catalog.DAMAGED:
            raise VerifyError(found.error)
        raise NotFoundError("backup %s of profile %s (host %s) is not in %s" % (backup_id, loc.profile, loc.host, remote.url(loc.base)))
    complete = [b for b in scan(remote, loc) if b.status == _catalog.COMPLETE]
    if not complete:
        raise NotFoundError("profile %s of host %s has no complete backup in %s" % (loc.profile, loc.host, remote.url(loc.base)))
    return complete[-1]


def listing(config, profile, host=None):
    """The remote catalog of a profile, as ``lifeboat remote-list`` and the module show it."""
    section = target(config, profile)
    loc = Location(section, host or config["host"], profile)
    remote = _s3.Remote(section)
    backups = scan(remote, loc)
    return {"profile": profile, "host": loc.host, "location": remote.url(loc.base), "backups": [b.summary() for b in backups]}


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
    if (head.get("Metadata") or {}).get(META_SHA) != item["sha256"]:
        return "was not uploaded from this artifact"
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum and checksum != _s3.hex_to_b64(item["sha256"]):
        return "has a SHA-256 different from the manifest's"
    return "ok"


def _local_manifest(entry):
    path = os.path.join(entry.path, MANIFEST)
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
    section = target(config, profile)
    if profile in config["profiles"] and section.get("enabled") is False:
        raise ConfigError("offsite.enabled: offsite copies are disabled for profile %s" % profile)
    loc = Location(section, manifest["host"], profile)
    started = time.time()
    remote = None
    try:
        remote = _s3.Remote(section)
        result = _push(config, section, remote, loc, entry, check_mode)
    except LifeboatError as exc:
        where = remote.url(loc.prefix(entry.id)) if remote else "s3://%s" % section["bucket"]
        error = type(exc)("Failed to push backup %s of profile %s to %s: %s" % (entry.id, profile, where, exc))
        if not check_mode:
            record(config, "push", manifest, entry.id, started, via, error=error, target=where)
        raise error
    if not check_mode:
        record(config, "push", manifest, entry.id, started, via, target=result["location"], bytes=result["uploaded_bytes"],
               detail="uploaded %d objects" % len(result["uploaded"]) if result["changed"] else "already offsite")
        result["warnings"] += _push_metrics(config, manifest)
    result["duration_seconds"] = round(time.time() - started, 3)
    return result


def _push(config, section, remote, loc, entry, check_mode):
    manifest = entry.manifest
    raw = _local_manifest(entry)
    listed = _group(remote.list(loc.prefix(entry.id)), loc.base).get(entry.id, {})
    remote_raw = None
    if MANIFEST in listed:
        remote_raw = remote.get(loc.key(entry.id, MANIFEST))[0]
        if remote_raw is not None and remote_raw != raw:
            raise OffsiteError("a different backup with id %s is already there; refusing to overwrite it" % entry.id)
    warnings = []
    states = {}
    for item in manifest["artifacts"]:
        head = remote.head(loc.key(entry.id, item["name"])) if item["name"] in listed else None
        states[item["name"]] = _remote_state(head, item)
        if head is not None and not head.get("ChecksumSHA256"):
            warnings = ["%s keeps no SHA-256 checksums; compared sizes and recorded hashes only" % remote.endpoint]
    todo = [item for item in manifest["artifacts"] if states[item["name"]] != "ok"]
    result = {
        "changed": bool(todo) or remote_raw is None,
        "id": entry.id,
        "profile": loc.profile,
        "host": loc.host,
        "location": remote.url(loc.prefix(entry.id)),
        "uploaded": [item["name"] for item in todo] + ([MANIFEST] if todo or remote_raw is None else []),
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
        remote.delete([(loc.key(entry.id, MANIFEST), None)])
    extra = _extra(section, entry.id)
    part_size = section["part_size_mb"] * _s3.MIB
    expected = {}
    for item in manifest["artifacts"]:
        if item in todo:
            meta = dict(extra, Metadata={META_SHA: item["sha256"]})
            expected[item["name"]] = remote.upload(loc.key(entry.id, item["name"]), os.path.join(entry.path, item["name"]),
                                                   item, part_size, meta)
    for item in manifest["artifacts"]:
        _confirm(remote, loc.key(entry.id, item["name"]), item, expected.get(item["name"]))
    verified = _retention.verification_state(entry.verification)
    checksum = remote.put(loc.key(entry.id, MANIFEST), raw, dict(extra, Metadata={META_VERIFIED: verified}))
    head = remote.head(loc.key(entry.id, MANIFEST))
    if head is None or head.get("ContentLength") != len(raw) or head.get("ChecksumSHA256") not in (None, checksum):
        remote.delete([(loc.key(entry.id, MANIFEST), None)])
        raise OffsiteError("manifest %s was not stored intact" % remote.url(loc.key(entry.id, MANIFEST)))
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


def record(config, action, manifest, backup_id, started, via, error=None, **fields):
    """Audit line (and the failure counter for pushes); a full log disk never hides the real error."""
    try:
        _audit.record(config["log_dir"], action, profile=manifest["profile"], database=manifest.get("database"),
                      backup_id=backup_id, result="failed" if error else "ok", error=str(error) if error else None,
                      duration_seconds=round(time.time() - started, 3), via=via, **fields)
        if error and action == "push":
            _metrics.update(config["metrics_dir"], manifest["profile"], manifest["database"], increment=["lifeboat_offsite_failures_total"])
    except LifeboatError:
        if not error:
            raise


def _local_and_offsite(config, profile):
    """Complete local backups (oldest first), and the ids among them whose manifest is in the bucket."""
    local = _catalog.complete_backups(config["backup_root"], profile)
    if not local:
        return [], set()
    section = target(config, profile)
    loc = Location(section, local[-1].manifest["host"], profile)
    listed = _group(_s3.Remote(section).list(loc.base), loc.base)
    return local, set(entry.id for entry in local if MANIFEST in listed.get(entry.id, {}))


def pending(config, profile):
    """Local backups the scheduled run pushes: those newer than the newest one already offsite.

    When nothing is offsite yet, only the newest; ``lifeboat push --all`` sends the rest.
    """
    local, offsite = _local_and_offsite(config, profile)
    present = [i for i, entry in enumerate(local) if entry.id in offsite]
    return local[present[-1] + 1:] if present else local[-1:]


def missing(config, profile):
    """Every complete local backup that has no manifest offsite (``lifeboat push --all``)."""
    local, offsite = _local_and_offsite(config, profile)
    return [entry for entry in local if entry.id not in offsite]
