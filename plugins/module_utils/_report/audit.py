# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit trail: one JSON line per backup, verify, restore, prune, push...

Lines name who did what to which backup, with the result and duration. They
never carry a password, a key or customer data: callers pass only the fields
listed in ``FIELDS``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import json
import os
import socket
import time

from .._store.files import append_line, ensure_dir, storage_error

AUDIT_FILE = "audit.jsonl"
FIELDS = (
    "profile", "database", "backup_id", "level", "target", "result", "error",
    "duration_seconds", "bytes", "deleted", "kept", "via", "detail",
)


def who():
    """The user running lifeboat, as audit lines and holds name it."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


def record(log_dir, action, **fields):
    """Append one audit line; returns the entry. Unknown field names are a bug, not data."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError("audit fields not allowed: %s" % ", ".join(sorted(unknown)))
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": action,
        "user": who(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    entry.update((k, v) for k, v in fields.items() if v is not None)
    path = os.path.join(ensure_dir(log_dir), AUDIT_FILE)
    try:
        append_line(path, json.dumps(entry, sort_keys=True))
    except OSError as exc:
        raise storage_error("append to audit log", path, exc)
    return entry
