# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credential gate of a profile: a backup waits at it while the profile's credential is being switched.

The profile lock alone makes a second run stop at once, which is right between two backups but wrong for a backup
that starts while ``in_place`` rotation changes the password under it: that backup should wait for the switch and
then run with the new credential. So a backup passes ``<profile dir>/.credential.lock`` (a shared flock, waiting)
for as long as it runs, and a rotation takes that gate exclusively (waiting for running backups to finish) and then
the profile lock too. The kernel drops both when a process dies.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import os
import time

from .._errors import LockError
from .files import FILE_MODE, ProfileLock, storage_error

GATE = ".credential.lock"
POLL_SECONDS = 0.1
BACKUP_WAIT = 600  # a rotation holds the gate for seconds; longer means it hangs, and the backup says so


def _flock(path, how, wait, what):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise storage_error("open lock file", path, exc)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockError("%s did not become free within %d s" % (what, wait))
            time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def passing(profile_dir, wait):
    """What a backup does just before its profile lock: wait while a rotation holds the gate."""
    fd = _flock(os.path.join(profile_dir, GATE), fcntl.LOCK_SH, wait, "the credential of profile %s (a rotation holds it)"
                % os.path.basename(profile_dir))
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def closed(profile_dir, profile, wait):
    """What a rotation holds: the gate (no new backup starts) and the profile lock (no backup runs)."""
    fd = _flock(os.path.join(profile_dir, GATE), fcntl.LOCK_EX, wait, "the credential gate of profile %s" % profile)
    try:
        lock = ProfileLock(profile_dir, profile)
        deadline = time.monotonic() + wait
        while True:
            try:
                lock.__enter__()
                break
            except LockError:
                if time.monotonic() >= deadline:
                    raise LockError("a backup of profile %s still runs after %d s; not switching its credential under it"
                                    % (profile, wait))
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            lock.__exit__(None, None, None)
    finally:
        os.close(fd)
