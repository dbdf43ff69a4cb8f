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
import pwd
import secrets
import shutil
import stat
import sys
import time

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


def _owner(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def foreign_owner(paths):
    """(path, owner) of the first existing path that belongs to another user while root runs lifeboat, else None.

    Root can write anywhere, so nothing would stop it, but what it leaves in the backup user's tree (a backup, a
    log or metrics directory) that user can then neither read nor replace: its prune reports it as damaged.
    """
    if os.geteuid() != 0:
        return None
    for path in paths:
        try:
            uid = os.stat(path).st_uid
        except OSError:
            continue
        if uid != 0:
            return path, _owner(uid)
    return None


def check_dir(fd, path):
    """Refuse a directory another local user could write into: they could replace or steer what we write there."""
    info = os.fstat(fd)
    me = os.geteuid()
    if info.st_uid not in (me, 0) and me == 0:
        owner = _owner(info.st_uid)
        raise StorageError("%s belongs to %s, but lifeboat runs as root: run it as %s (runuser -u %s -- lifeboat ..., "
                           "or sudo -u %s lifeboat ...); only if root should own the backups: chown root %s"
                           % (path, owner, owner, owner, owner, path))
    if info.st_uid not in (me, 0):
        raise StorageError("%s is owned by %s (mode %04o), not by %s who runs lifeboat: that user could replace backups "
                           "there; fix: chown %s %s (or run lifeboat as %s if that is the backup user)"
                           % (path, _owner(info.st_uid), stat.S_IMODE(info.st_mode), _owner(me), _owner(me), path,
                              _owner(info.st_uid)))
    if info.st_mode & 0o022:
        raise StorageError("%s is writable by group or others (owner %s, mode %04o): they could replace backups there; "
                           "fix: chmod 0700 %s" % (path, _owner(info.st_uid), stat.S_IMODE(info.st_mode), path))


def _above(path):
    current = os.path.dirname(path)
    while current != os.path.dirname(current):
        yield current
        current = os.path.dirname(current)
    yield current


def _check_above(path):
    """The directories above the backup root (and above what it links to) must be closed to other users too, sticky
    ones such as /tmp aside: else one of them could move the root away and put a link to anywhere in its place."""
    me = os.geteuid()
    for current in sorted(set(_above(os.path.abspath(path))) | set(_above(os.path.realpath(path))), reverse=True):
        try:
            info = os.stat(current)
        except OSError as exc:
            raise storage_error("check directory", current, exc)
        if info.st_uid not in (me, 0) or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            raise StorageError("%s, above the backup root %s, can be changed by %s (owner %s, mode %04o): they could "
                               "replace the backup root; move the backup root, or fix: chown root %s; chmod go-w %s"
                               % (current, path, "its owner" if info.st_uid not in (me, 0) else "group or others",
                                  _owner(info.st_uid), stat.S_IMODE(info.st_mode), current, current))


def _open_dir(name, dir_fd=None, shown=None):
    """A directory's fd; with ``dir_fd`` a symlink at ``name`` is refused, never followed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if dir_fd is not None else 0)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and dir_fd is not None:
            raise StorageError("%s is not a directory lifeboat made (a symbolic link or a file); lifeboat never follows "
                               "it: remove it" % (shown or name))
        raise storage_error("open directory", shown or name, exc)


class ProfileDir:
    """A profile directory held open, checked through its fd: what is created in it is created relative to that fd."""

    def __init__(self, backup_root, path):
        """``path`` is ``<backup_root>/<profile>``; both are created when missing (0700) and both are checked."""
        self.path = path
        ensure_dir(backup_root)
        _check_above(backup_root)
        root_fd = _open_dir(backup_root)  # the configured root may itself be a link the operator set up
        try:
            check_dir(root_fd, backup_root)
            name = os.path.basename(path)
            try:
                os.mkdir(name, DIR_MODE, dir_fd=root_fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise storage_error("create directory", path, exc)
            self.fd = _open_dir(name, root_fd, path)
        finally:
            os.close(root_fd)
        try:
            check_dir(self.fd, path)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def exists(self, name):
        try:
            os.lstat(name, dir_fd=self.fd)
            return True
        except FileNotFoundError:
            return False


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(name):
    return "%s.tmp-%s" % (name, secrets.token_hex(8))  # unpredictable: nobody can plant a link there beforehand


def atomic_write(path, data, mode=FILE_MODE, dir_fd=None):
    """Write ``data`` (bytes) to ``path`` so readers see the old file or the new one, never half.

    The temporary file has an unpredictable name and is created with O_EXCL|O_NOFOLLOW relative to the directory:
    ``dir_fd`` when given (``path``'s directory, held open by the caller), else ``path``'s directory opened once
    and checked (owner, mode).
    """
    where = dir_fd if dir_fd is not None else _open_dir(os.path.dirname(path) or ".")
    name = os.path.basename(path)
    tmp = _temp_name(name)
    try:
        if dir_fd is None:
            check_dir(where, os.path.dirname(path) or ".")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=where)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=where, dst_dir_fd=where)
        os.fsync(where)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=where)
        except OSError:
            pass
        raise storage_error("write", path, exc)
    finally:
        if dir_fd is None:
            os.close(where)


def atomic_write_json(path, document, mode=FILE_MODE, dir_fd=None):
    atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode, dir_fd)


def append_line(path, line, mode=FILE_MODE):
    """Append one line with a single write (O_APPEND keeps concurrent writers' lines whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def pause_point(point):
    """Test hook: with LIFEBOAT_TEST_PAUSE=<point> the run says so on stderr and waits, so a test can kill -9 there."""
    if os.environ.get("LIFEBOAT_TEST_PAUSE") == point:
        sys.stderr.write("lifeboat: paused at %s\n" % point)
        sys.stderr.flush()
        time.sleep(120)


class Staging:
    """``<id>.partial/``, made by mkdir in the profile directory (mkdir never follows a link) and held open."""

    def __init__(self, profile, backup_id):
        self.name = backup_id + PARTIAL
        self.path = os.path.join(profile.path, self.name)
        os.mkdir(self.name, DIR_MODE, dir_fd=profile.fd)
        self.fd = _open_dir(self.name, profile.fd, self.path)


def _foreign(profile, name, info):
    """Why an entry of the profile directory is not something lifeboat made, or None."""
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link (to %s)" % os.readlink(name, dir_fd=profile.fd)
    if info.st_uid not in (os.geteuid(), 0):
        return "owned by %s" % _owner(info.st_uid)
    return None


def _clear_leftovers(profile):
    """Under the lock: refuse what lifeboat did not make; remove the .partial of a run that died."""
    with os.scandir(profile.fd) as entries:
        names = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    for name, info in names:
        why = _foreign(profile, name, info)
        if why:
            raise StorageError("%s is %s: lifeboat did not make it and never follows or reuses it; move it away"
                               % (os.path.join(profile.path, name), why))
        if name.endswith(PARTIAL) and stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=profile.fd, ignore_errors=True)  # a prune may be removing it too


def _clear_final(profile, name):
    """A manifest-less directory at the final name (an interrupted run of an older version) gives way."""
    if not profile.exists(name):
        return
    fd = _open_dir(name, profile.fd, os.path.join(profile.path, name))
    try:
        os.lstat("manifest.json", dir_fd=fd)
        raise StorageError("%s already holds a backup" % os.path.join(profile.path, name))
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)
    shutil.rmtree(name, dir_fd=profile.fd)


@contextlib.contextmanager
def staged(profile, backup_id, error_class):
    """Yield a Staging for ``<backup_id>.partial/`` inside ``profile`` (a ProfileDir, locked); fill it, manifest last.

    The commit point is one rename: artifacts and manifest are fsynced inside the partial directory, then it is
    renamed to ``<backup_id>`` and the profile directory fsynced. A run killed before leaves a .partial (the next
    run removes it), after it a complete backup: never a directory that looks complete without its manifest. On any
    failure the partial directory is removed and an OSError becomes ``error_class`` naming the directory.
    """
    try:
        _clear_leftovers(profile)
        stage = Staging(profile, backup_id)
    except FileExistsError:
        raise StorageError("%s appeared while lifeboat was starting to write it; lifeboat did not make it: remove it"
                           % os.path.join(profile.path, backup_id + PARTIAL))
    except OSError as exc:
        raise error_class("cannot create %s: %s" % (os.path.join(profile.path, backup_id + PARTIAL), exc.strerror or exc))
    committed = False
    try:
        yield stage
        os.fsync(stage.fd)
        pause_point("commit")
        _clear_final(profile, backup_id)
        os.rename(stage.name, backup_id, src_dir_fd=profile.fd, dst_dir_fd=profile.fd)
        committed = True
        os.fsync(profile.fd)
    except BaseException as exc:
        shutil.rmtree(backup_id if committed else stage.name, dir_fd=profile.fd, ignore_errors=True)
        if isinstance(exc, OSError):
            raise error_class("cannot write into %s: %s" % (profile.path, exc.strerror or exc))
        raise
    finally:
        os.close(stage.fd)


_LOCK = ".lock"


class ProfileLock:
    """An exclusive, non-blocking flock on ``<profile dir>/.lock``.

    The kernel drops it when the process dies, so a crashed run never leaves
    a stale lock behind. ``profile_dir`` is a ProfileDir (the lock is opened
    through its fd) or a path. The lock file is never followed if it is a
    link, and must be a regular file of the user running lifeboat.
    """

    def __init__(self, profile_dir, profile):
        self.dir = profile_dir
        self.path = os.path.join(getattr(profile_dir, "path", profile_dir), _LOCK)
        self.profile = profile
        self.fd = None

    def _open(self):
        held = isinstance(self.dir, ProfileDir)
        dir_fd = self.dir.fd if held else _open_dir(self.dir)
        try:
            return os.open(_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE,
                           dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError("%s is a symbolic link, not the lock file lifeboat makes; lifeboat never follows "
                                   "it: remove it" % self.path)
            raise storage_error("open lock file", self.path, exc)
        finally:
            if not held:
                os.close(dir_fd)

    def __enter__(self):
        self.fd = self._open()
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            os.close(self.fd)
            self.fd = None
            raise StorageError("%s is not the lock file lifeboat makes (%s, owner %s, %d links; it must be a "
                               "regular file of %s): remove it" % (self.path, stat.filemode(info.st_mode), _owner(info.st_uid),
                                                                   info.st_nlink, _owner(os.geteuid())))
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
    path = os.path.join(profile_dir, _LOCK)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
