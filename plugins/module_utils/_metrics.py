# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus textfile metrics for node_exporter's textfile collector.

One file per profile (``lifeboat_<profile>.prom``), rewritten atomically so
the collector never reads half a file. The previous file is the state: a
counter is read back and incremented. Labels are profile and database only;
no customer data, no secrets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ._storage import atomic_write, ensure_dir

# name -> (type, help)
REGISTRY = {
    "lifeboat_backup_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful backup."),
    "lifeboat_backup_last_attempt_timestamp_seconds": ("gauge", "Unix time of the last backup attempt."),
    "lifeboat_backup_last_run_success": ("gauge", "1 if the last backup attempt succeeded, 0 if it failed."),
    "lifeboat_backup_duration_seconds": ("gauge", "Wall time of the last successful backup."),
    "lifeboat_backup_size_bytes": ("gauge", "Size of the artifacts of the last successful backup."),
    "lifeboat_backup_failures_total": ("counter", "Failed backup attempts."),
    "lifeboat_verify_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful verification."),
    "lifeboat_verify_failures_total": ("counter", "Failed verifications."),
}

# Labels up to the last '}': an escaped label value may itself hold '}' (a database named 'a}b').
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{.*\}\s+(\S+)$")
_HEADER = re.compile(r"^# (HELP|TYPE) (lifeboat_[a-zA-Z0-9_:]*) (.*)$")


def register(name, kind, help_text):
    """Let later features (offsite, prune, drills) add their own metric families."""
    REGISTRY[name] = (kind, help_text)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def path_for(metrics_dir, profile):
    return os.path.join(metrics_dir, "lifeboat_%s.prom" % profile)


def read(metrics_dir, profile):
    values, described = {}, {}
    try:
        with open(path_for(metrics_dir, profile), "r", encoding="utf-8") as handle:
            for line in handle:
                header = _HEADER.match(line.strip())
                if header:  # keep families this process did not register (e.g. prune's, written by a dump)
                    described.setdefault(header.group(2), {})[header.group(1)] = header.group(3)
                match = _LINE.match(line.strip())
                family = described.get(match.group(1), {}) if match else {}
                if match and match.group(1) not in REGISTRY and family.get("TYPE") in ("gauge", "counter"):
                    register(match.group(1), family["TYPE"], family.get("HELP", ""))
                if match and match.group(1) in REGISTRY:
                    values[match.group(1)] = float(match.group(2))
    except (OSError, ValueError):
        pass  # a missing or unreadable file starts the counters again
    return values


def update(metrics_dir, profile, database, values=None, increment=()):
    """Set gauges in ``values``, add to counters in ``increment``, rewrite the file.

    ``increment``: counter names (each + 1) or a mapping of counter name to amount.
    """
    current = read(metrics_dir, profile)
    current.update(values or {})
    amounts = increment if isinstance(increment, dict) else dict((name, 1) for name in increment)
    for name, amount in amounts.items():
        current[name] = current.get(name, 0) + amount
    for name, family in REGISTRY.items():
        if family[0] == "counter":
            current.setdefault(name, 0)
    labels = 'profile="%s",database="%s"' % (_escape(profile), _escape(database))
    lines = []
    for name in sorted(current):
        kind, help_text = REGISTRY[name]
        lines += ["# HELP %s %s" % (name, help_text), "# TYPE %s %s" % (name, kind), "%s{%s} %s" % (name, labels, _number(current[name]))]
    ensure_dir(metrics_dir, 0o755)
    atomic_write(path_for(metrics_dir, profile), ("\n".join(lines) + "\n").encode("utf-8"), mode=0o644)
    return current


def _number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))
