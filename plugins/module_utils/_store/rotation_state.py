# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rotation remembers between runs, one 0600 JSON file per role under the state directory.

PostgreSQL keeps no password age, and ``rolvaliduntil`` would lock the role out when a rotation is late, so the
time of the last rotation, the active login and the logins waiting out their grace live here. Without a daemon,
grace is enforced by the next run on this host (a rotation, its check mode reports it): it disables every login
whose grace has passed. No secret is ever written here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from .._errors import StorageError
from .files import atomic_write_json, ensure_dir

_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def path_for(state_dir, role):
    return os.path.join(state_dir, "credential_%s.json" % _SAFE.sub("_", role))


def load(state_dir, role):
    """The recorded state of ``role``; an empty one when it never rotated here."""
    path = path_for(state_dir, role)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return {"role": role, "retiring": []}
    except (OSError, ValueError) as exc:
        raise StorageError("cannot read rotation state %s: %s (move it away to start afresh)" % (path, exc))
    if state.get("role") != role:
        raise StorageError("rotation state %s belongs to role %r, not %r" % (path, state.get("role"), role))
    state.setdefault("retiring", [])
    return state


def save(state_dir, state):
    atomic_write_json(path_for(ensure_dir(state_dir), state["role"]), state)
