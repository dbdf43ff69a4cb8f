# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading backups back from the bucket: pull, and verify or restore straight from it.

A pull downloads into ``<id>.partial/``, checks every artifact's size and
SHA-256 against the manifest, writes the manifest last inside it, and renames
the directory: a pulled directory is a backup only when it is whole. Verify and
restore of a remote backup pull into a private temporary directory first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os

from .._errors import OffsiteError, VerifyError
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._store import catalog as _catalog
from .._stream import scratch as _scratch
from .._store.files import ProfileDir, ProfileLock, atomic_write, staged
from . import verify as _verify
from .operation import Operation


def pull(config, profile, backup_id=None, host=None, dest=None, via="module", check_mode=False):
    """Download a remote backup into ``<dest>/<profile>/<id>/``; the manifest is written only once all is checked."""
    section = _remote.target(config, profile)
    loc = _remote.Location(section, host or config["host"], profile)
    root = dest or config["backup_root"]
    with Operation(config, "pull", "pull profile %s from offsite" % profile, via, check_mode, profile=profile, backup_id=backup_id, target=root) as op:
        remote = _s3.Remote(section)
        try:
            backup = _remote.find(remote, loc, backup_id)
        except VerifyError as exc:
            raise VerifyError("remote copy of backup %s is not intact: %s" % (backup_id, exc))
        op.audit(backup_id=backup.id, database=backup.manifest["database"])
        final = os.path.join(_catalog.profile_dir(root, profile), backup.id)
        result = {
            "changed": not _same_local(final, backup.raw),
            "id": backup.id,
            "profile": profile,
            "host": loc.host,
            "source": remote.url(loc.prefix(backup.id)),
            "path": final,
            "bytes": backup.size,
            "consistent_at": backup.manifest["consistent_at"],
        }
        if result["changed"] and not check_mode:
            try:
                _check_listed(remote, loc, backup)
                _download(remote, loc, backup, root, profile)
            except VerifyError as exc:
                raise VerifyError("remote copy of backup %s is not intact: %s" % (backup.id, exc))
        op.audit(target=final, bytes=backup.size if result["changed"] else 0, detail="downloaded" if result["changed"] else "already present")
    result["duration_seconds"] = op.duration
    return result


def _same_local(final, raw):
    try:
        with open(os.path.join(final, _remote.MANIFEST), "rb") as handle:
            local = handle.read()
    except OSError:
        return False
    if local != raw:
        raise OffsiteError("%s holds a different backup with the same id; move it away first" % final)
    return True


def _check_listed(remote, loc, backup):
    """Sizes from the listing first: a missing or truncated object fails before anything is downloaded."""
    for item in backup.manifest["artifacts"]:
        found = backup.objects.get(item["name"])
        url = remote.url(loc.key(backup.id, item["name"]))
        if found is None:
            raise VerifyError("artifact %s is missing (%s)" % (item["name"], url))
        if found["size"] != item["bytes"]:
            raise VerifyError("artifact %s (%s) is %d bytes but the manifest records %d" % (item["name"], url, found["size"], item["bytes"]))


def _download(remote, loc, backup, root, profile):
    with ProfileDir(root, _catalog.profile_dir(root, profile)) as profile_dir, ProfileLock(profile_dir, profile):
        with staged(profile_dir, backup.id, OffsiteError) as partial:
            for item in backup.manifest["artifacts"]:
                key = loc.key(backup.id, item["name"])
                size, sha256 = remote.download(key, os.path.join(partial.path, item["name"]))
                if (size, sha256) != (item["bytes"], item["sha256"]):
                    raise VerifyError("artifact %s (%s) does not match its SHA-256 in the manifest (corrupted)"
                                      % (item["name"], remote.url(key)))
            atomic_write(os.path.join(partial.path, _remote.MANIFEST), backup.raw, dir_fd=partial.fd)  # the rename commits


@contextlib.contextmanager
def pulled(config, profile, backup_id=None, host=None, tmp_dir=None, via="module"):
    """A remote backup pulled into a private directory for verify or restore (swept if the engine is killed)."""
    with _scratch.PrivateDir("offsite", tmp_dir) as root:
        result = pull(config, profile, backup_id, host, dest=root, via=via)
        yield _catalog.resolve(path=result["path"])


def remote_entry(config, profile, backup_id=None, host=None):
    """A remote backup's record (its manifest, no artifacts): enough for plans in check mode."""
    section = _remote.target(config, profile)
    loc = _remote.Location(section, host or config["host"], profile)
    remote = _s3.Remote(section)
    return _remote.find(remote, loc, backup_id)


def verify_remote(config, profile, backup_id, host, level, tmp_dir=None, via="module", **checks):
    """Verify the offsite copy itself: pull it (checking every object), then verify it with ``checks``
    (identity_file, scratch) as _actions/verify.py does."""
    with _scratch.PrivateDir("offsite", tmp_dir) as root:
        try:
            fetched = pull(config, profile, backup_id, host, dest=root, via=via)
        except VerifyError as exc:  # the copy itself is damaged: that is this verification's verdict
            with Operation(config, "verify", "", via, kind=VerifyError,
                           message="Verification (%s) of the offsite copy of profile %s failed" % (level, profile),
                           profile=profile, backup_id=backup_id, level=level, detail="offsite"):
                raise exc
        result = _verify.verify(config, _catalog.resolve(path=fetched["path"]), level, via=via, **checks)
    result.update(path=fetched["source"], source="offsite")
    return result
