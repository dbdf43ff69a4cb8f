# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Working files with secrets or plaintext in them, that a killed engine leaves behind for no longer than the next
lifeboat command.

- Small secrets a program reads by name (the libpq password file, a one-time
  age identity): ``SecretFile``, on Linux a memfd, named ``/proc/<pid>/fd/<n>``.
  It is memory of this process and goes with it, however it ends.
- Large plaintext a program must seek in (``pg_restore --jobs`` opens its
  archive by name, so an O_TMPFILE is no use, and a memfd of hundreds of MB
  would be RAM): ``PrivateDir``, a 0700 directory ``lifeboat-<kind>-<random>``
  in the temporary directory, marked with its owner (pid, start time, pid
  namespace). ``sweep`` removes such directories of this user whose owner is dead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import stat
import tempfile

PREFIX = "lifeboat-"
OWNER = ".owner"


def _proc_start(pid):
    """Start time of ``pid`` (clock ticks since boot), None when it is not running, "-" where there is no /proc."""
    if not os.path.isdir("/proc/self"):
        return "-"
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode()  # field 22 of stat(5); the command name before ")" may hold spaces


def _pid_namespace():
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def _owner_line():
    return "%d %s %s\n" % (os.getpid(), _proc_start(os.getpid()), _pid_namespace())


def _owner_is_dead(line):
    """Whether the process a marker names is gone (or its pid now belongs to another process)."""
    try:
        pid, start, namespace = line.split()
        pid = int(pid)
    except ValueError:
        return False  # being written, or not ours: leave it
    if namespace != _pid_namespace():
        return False  # another pid namespace (a container sharing /tmp): its pids mean nothing here
    if start == "-":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return _proc_start(pid) != start


def _read_marker(path):
    try:
        fd = os.open(os.path.join(path, OWNER), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "r", errors="replace") as handle:
            return handle.read(200)
    except OSError:
        return ""  # not a marker file (a directory, a fifo): not ours


def _orphaned(path):
    """A directory this user made (not a link, 0700) whose marker names a dead owner."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return False
    return _owner_is_dead(_read_marker(path))


def sweep(base=None):
    """Remove the private directories of this user in ``base`` (the temporary directory) whose owner is dead.

    Returns the paths removed. Called by every command that makes one, and
    meant to be called once by every lifeboat command.
    """
    base = base or tempfile.gettempdir()
    try:
        names = [name for name in os.listdir(base) if name.startswith(PREFIX)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(base, name)
        if _orphaned(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class PrivateDir:
    """A new 0700 directory in ``base`` (the temporary directory), marked as this process's; removed on exit.

    Its owner marker is written before anything else, so a directory without
    one (the engine killed in between) holds nothing.
    """

    def __init__(self, kind, base=None):
        sweep(base)
        self.path = tempfile.mkdtemp(prefix="%s%s-" % (PREFIX, kind), dir=base)
        try:
            fd = os.open(os.path.join(self.path, OWNER), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(_owner_line())
        except BaseException:
            self.remove()
            raise

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        self.remove()

    def remove(self):
        if self.path:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


class SecretFile:
    """``text`` in a 0600 file that this user's programs open by ``path``; ``close()`` removes it.

    On Linux a memfd, reached as ``/proc/<pid>/fd/<n>`` (other users cannot:
    those links follow ptrace's access rules): it cannot outlive this process.
    Elsewhere a file in a PrivateDir, which a killed engine leaves to ``sweep``.
    """

    def __init__(self, name, text):
        self.path = self._fd = self._dir = None
        data = text.encode("utf-8")
        if hasattr(os, "memfd_create"):
            self._in_memory(name, data)
        if self.path is None:
            self._dir = PrivateDir("secret")
            self.path = os.path.join(self._dir.path, name)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)

    def _in_memory(self, name, data):
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        path = "/proc/%d/fd/%d" % (os.getpid(), fd)
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.close(os.open(path, os.O_RDONLY))  # reachable by name, as the programs will open it
        except OSError:
            os.close(fd)  # no /proc, or a non-dumpable process: the private directory instead
            return
        self._fd, self.path = fd, path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._dir:
            self._dir.remove()
            self._dir = None
        self.path = None


def _write_all(fd, data):
    with open(fd, "wb", closefd=False) as handle:  # a buffered writer retries short writes
        handle.write(data)
