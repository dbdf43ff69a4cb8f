# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private directories, atomic files and the per-profile lock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import shutil

from .._errors import LockError, StorageError

DIR_MODE = 0o700
PARTIAL = ".partial"  # suffix of a backup directory being written
FILE_MODE = 0o600


def storage_error(action, path, exc):
    if exc.errno == errno.ENOSPC:
        return StorageError("cannot %s %s: no space left on device" % (action, path))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError("cannot %s %s: %s (check owner and mode)" % (action, path, exc.strerror))
    return StorageError("cannot %s %s: %s" % (action, path, exc.strerror or exc))


def ensure_dir(path, mode=DIR_MODE):
    """Create ``path`` (and parents) with ``mode``; tighten it when we created it."""
    try:
        if not os.path.isdir(path):
            os.makedirs(path, mode)
            os.chmod(path, mode)
        return path
    except OSError as exc:
        raise storage_error("create directory", path, exc)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=FILE_MODE):
    """Write ``data`` (bytes) to ``path`` so readers see the old file or the new one, never half."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        fsync_dir(os.path.dirname(path) or ".")
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise storage_error("write", path, exc)


def atomic_write_json(path, document, mode=FILE_MODE):
    atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode)


def append_line(path, line, mode=FILE_MODE):
    """Append one line with a single write (O_APPEND keeps concurrent writers' lines whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged(final, error_class):
    """Yield ``<final>.partial`` to fill; on success fsync it and rename it to ``final``.

    On any failure the partial directory is removed and an OSError becomes
    ``error_class`` naming the directory. The caller writes the manifest
    afterwards: until then ``final`` is not a backup.
    """
    partial = final + PARTIAL
    parent = os.path.dirname(final)
    remove_tree(partial)  # the leftover of a run that died under the same lock
    try:
        ensure_dir(partial)
        yield partial
        fsync_dir(partial)
        remove_tree(final)  # a directory without manifest: the leftover of an interrupted run
        os.rename(partial, final)
        fsync_dir(parent)
    except BaseException as exc:
        remove_tree(partial)
        if isinstance(exc, OSError):
            raise error_class("cannot write into %s: %s" % (parent, exc.strerror or exc))
        raise


class ProfileLock:
    """An exclusive, non-blocking flock on ``<profile dir>/.lock``.

    The kernel drops it when the process dies, so a crashed run never leaves
    a stale lock behind.
    """

    def __init__(self, profile_dir, profile):
        self.path = os.path.join(profile_dir, ".lock")
        self.profile = profile
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise storage_error("open lock file", self.path, exc)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise LockError("another run of profile %s is in progress (pid %s); not starting a second one" % (self.profile, holder))
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode("ascii"), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def is_locked(profile_dir):
    """True while some process holds the profile lock (a backup is being written)."""
    path = os.path.join(profile_dir, ".lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
