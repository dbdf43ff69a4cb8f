# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Programs that die with the engine, even when it is killed with SIGKILL.

A ``pg_restore --jobs`` left running by a killed engine goes on and commits;
so do the workers it forked, which PR_SET_PDEATHSIG (set on the direct child
only, and fired by the death of the forking thread, not the process) would
not reach. So every program leads a process group of its own, which its own
children join, and one small guard process per engine holds the read end of
a pipe from it with the list of those groups. However the engine ends, the
pipe then reaches its end, and the guard kills every group still listed.
A group is taken off the list before its leader is reaped, so the guard
never signals a process group id the system could have given to another.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import subprocess
import sys
import threading

# The guard: its own session (a signal to the engine's terminal or process group leaves it to do its job).
_GUARD = r"""
import os, signal, sys
groups = set()
for line in sys.stdin.buffer:
    (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_guard = []  # [Popen] once started, [None] where it cannot be


def _guard_pipe():
    with _lock:
        if not _guard:
            try:
                _guard.append(subprocess.Popen([sys.executable, "-I", "-S", "-c", _GUARD], stdin=subprocess.PIPE,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                                               start_new_session=True))
            except (OSError, ValueError):
                _guard.append(None)  # no interpreter to start: children still end with the engine's own cleanup
        return _guard[0].stdin.fileno() if _guard[0] else None


def _tell(sign, pid):
    fd = _guard_pipe()
    if fd is not None:
        try:
            os.write(fd, b"%s%d\n" % (sign, pid))  # one short write: atomic among threads
        except OSError:
            pass  # the guard is gone; the engine's own cleanup still kills its children


def start(argv, **popen):
    """``subprocess.Popen(argv, **popen)`` as the leader of a process group the guard kills if the engine dies."""
    proc = subprocess.Popen(argv, start_new_session=True, **popen)
    _tell(b"+", proc.pid)
    return proc


def kill(proc):
    """SIGKILL ``proc`` and whatever it started, while its pid still names its group (not reaped yet)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def wait(proc):
    """Wait for ``proc``; the guard forgets its group before the pid is released."""
    if proc.returncode is None:
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass  # another thread reaped it
    _tell(b"-", proc.pid)
    return proc.wait()
