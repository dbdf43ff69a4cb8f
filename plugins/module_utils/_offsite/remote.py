# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote catalog: where a profile's backups live in the bucket and which of them are complete.

The bucket mirrors the local layout: ``<prefix>/<host>/<profile>/<backup_id>/``.
Like on disk, a remote backup without its manifest does not exist.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .._config.schema import effective_section
from .._errors import ConfigError, NotFoundError, VerifyError
from .._store import catalog as _catalog
from .._store import manifest as _manifest
from .._store import record as _record
from . import s3 as _s3

MANIFEST = _manifest.MANIFEST
META_SHA = "lifeboat-sha256"  # boto3 lower-cases metadata keys; so do we
META_VERIFIED = _record.META_VERIFIED
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


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


def group_by_backup(objects, base):
    groups = {}
    for key, info in objects.items():
        rest = key[len(base):]
        if "/" in rest:
            backup_id, name = rest.split("/", 1)
            groups.setdefault(backup_id, {})[name] = info
    return groups


def _describe(remote, loc, backup_id, objects):
    where = remote.url(loc.prefix(backup_id)).rstrip("/")
    if MANIFEST not in objects:
        return _record.Backup(where, _record.INCOMPLETE, error="no manifest", backup_id=backup_id, objects=objects)
    key = loc.key(backup_id, MANIFEST)
    raw, metadata = remote.get(key)
    if raw is None:
        return _record.Backup(where, _record.INCOMPLETE, error="no manifest", backup_id=backup_id, objects=objects)
    try:
        manifest = _record.check_place(_manifest.parse(raw, remote.url(key)), remote.url(key),
                                       backup_id=backup_id, profile=loc.profile, host=loc.host)
    except VerifyError as exc:
        return _record.Backup(where, _record.DAMAGED, error=str(exc), backup_id=backup_id, objects=objects)
    return _record.Backup(where, _record.COMPLETE, manifest, backup_id=backup_id, objects=objects, raw=raw, metadata=metadata)


def scan(remote, loc):
    """Every backup id of the profile in the bucket: complete ones by snapshot time, then the rest."""
    groups = group_by_backup(remote.list(loc.base), loc.base)
    found = [_describe(remote, loc, backup_id, objects) for backup_id, objects in sorted(groups.items())]
    complete = sorted((b for b in found if b.status == _catalog.COMPLETE), key=lambda b: (b.time, b.id))
    return complete + [b for b in found if b.status != _catalog.COMPLETE]


def find(remote, loc, backup_id=None):
    """One complete remote backup: by id, or the newest (which must not be damaged)."""
    if backup_id:
        objects = group_by_backup(remote.list(loc.prefix(backup_id)), loc.base).get(backup_id, {})
        found = _describe(remote, loc, backup_id, objects)
        if found.status == _catalog.COMPLETE:
            return found
        if found.status == _catalog.DAMAGED:
            raise VerifyError(found.error)
        raise NotFoundError("backup %s of profile %s (host %s) is not in %s" % (backup_id, loc.profile, loc.host, remote.url(loc.base)))
    found = scan(remote, loc)
    if not any(b.status == _catalog.COMPLETE for b in found):
        raise NotFoundError("profile %s of host %s has no complete backup in %s" % (loc.profile, loc.host, remote.url(loc.base)))
    return _record.refuse_damaged_newest(_record.newest(found), loc.profile)


def listing(config, profile, host=None):
    """The remote catalog of a profile, as ``lifeboat remote-list`` and the module show it."""
    section = target(config, profile)
    loc = Location(section, host or config["host"], profile)
    remote = _s3.Remote(section)
    backups = scan(remote, loc)
    return {"profile": profile, "host": loc.host, "location": remote.url(loc.base), "backups": [b.summary() for b in backups]}


def _local_and_offsite(config, profile):
    """Complete local backups (oldest first), and the ids among them whose manifest is in the bucket."""
    local = _catalog.complete_backups(config["backup_root"], profile)
    if not local:
        return [], set()
    section = target(config, profile)
    loc = Location(section, local[-1].manifest["host"], profile)
    listed = group_by_backup(_s3.Remote(section).list(loc.base), loc.base)
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
