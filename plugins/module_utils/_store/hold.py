# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holds: a backup kept whatever the retention policy says (Barman's ``keep``), until released.

The local record is ``hold.json`` (0600) in the backup directory; the bucket keeps a copy under the backup's prefix
(see _offsite/hold.py), so remote prune sees it too. A hold never changes the manifest or the artifacts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from .._errors import ConfigError
from .files import atomic_write, storage_error

HOLD = "hold.json"
MAX_REASON = 500


def check_reason(reason):
    reason = " ".join((reason or "").split())
    if not reason:
        raise ConfigError("reason: say why the backup is held (for example 'legal: 7 years, ticket 4711')")
    if len(reason) > MAX_REASON:
        raise ConfigError("reason: %d characters; keep it under %d" % (len(reason), MAX_REASON))
    return reason


def record(reason, user, now=None):
    """The hold document: why, by whom, since when."""
    return {"reason": reason, "by": user, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time()))}


def encode(document):
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse(raw):
    """A hold document from bytes; a file that is not one still holds (reason says so): never prune on doubt."""
    try:
        document = json.loads(raw.decode("utf-8"))
        if isinstance(document, dict) and isinstance(document.get("reason"), str):
            return document
    except (UnicodeDecodeError, ValueError):
        pass
    return {"reason": "unreadable hold.json (held until released)"}


def read(backup_dir):
    """The hold of a backup directory, or None."""
    try:
        with open(os.path.join(backup_dir, HOLD), "rb") as handle:
            return parse(handle.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"reason": "hold.json unreadable: %s (held until released)" % (exc.strerror or exc)}


def write(backup_dir, document):
    atomic_write(os.path.join(backup_dir, HOLD), encode(document))


def remove(backup_dir):
    path = os.path.join(backup_dir, HOLD)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise storage_error("remove", path, exc)
