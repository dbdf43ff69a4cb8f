# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus textfile metrics for node_exporter's textfile collector.

One file per profile (``lifeboat_<profile>.prom``), rewritten atomically so
the collector never reads half a file. The previous file is the state: a
counter is read back and incremented. Labels are profile and database (a drill: profile and source_host; a
credential: role);
no customer data, no secrets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from .._store.files import atomic_write, ensure_dir

# The catalogue: every metric lifeboat writes, name -> (type, help). Nothing registers more at import time.
REGISTRY = {
    "lifeboat_backup_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful backup."),
    "lifeboat_backup_last_attempt_timestamp_seconds": ("gauge", "Unix time of the last backup attempt."),
    "lifeboat_backup_last_run_success": ("gauge", "1 if the last backup attempt succeeded, 0 if it failed."),
    "lifeboat_backup_duration_seconds": ("gauge", "Wall time of the last successful backup."),
    "lifeboat_backup_size_bytes": ("gauge", "Size of the artifacts of the last successful backup."),
    "lifeboat_backup_failures_total": ("counter", "Failed backup attempts."),
    "lifeboat_verify_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful verification."),
    "lifeboat_verify_failures_total": ("counter", "Failed verifications."),
    "lifeboat_prune_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful prune."),
    "lifeboat_prune_deleted_total": ("counter", "Backups deleted by retention."),
    "lifeboat_prune_failures_total": ("counter", "Prunes that failed."),
    "lifeboat_prune_kept_backups": ("gauge", "Complete backups left after the last prune."),
    "lifeboat_offsite_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful push offsite."),
    "lifeboat_offsite_last_backup_timestamp_seconds": ("gauge", "Snapshot time of the newest backup pushed offsite (offsite lag is now minus this)."),
    "lifeboat_offsite_bytes": ("gauge", "Size of the artifacts of the last backup pushed offsite."),
    "lifeboat_offsite_failures_total": ("counter", "Failed pushes offsite and remote prunes."),
    "lifeboat_notify_failures_total": ("counter", "Webhook or dead-man's-switch deliveries that failed."),
    # Label role: a database role, or offsite:<IAM user> for an offsite access key (its CreateDate is the rotation).
    "lifeboat_credential_last_rotation_timestamp_seconds": (
        "gauge", "Unix time the credential was last rotated (label role: a database role, or offsite:<IAM user>)."),
    "lifeboat_credential_age_seconds": (
        "gauge", "Age of the credential when lifeboat last looked (label role: a database role, or offsite:<IAM user>)."),
    # Written on the drill host, labelled profile and source_host, into lifeboat_drill_<profile>.prom.
    "lifeboat_drill_last_run_timestamp_seconds": ("gauge", "Unix time of the last recovery drill."),
    "lifeboat_drill_last_success_timestamp_seconds": ("gauge", "Unix time of the last recovery drill that passed its checks and objectives."),
    "lifeboat_drill_rto_seconds": ("gauge", "Measured RTO of the last drill: drill start to checks passed."),
    "lifeboat_drill_rpo_seconds": ("gauge", "Measured RPO of the last drill: drill start minus the restored backup's consistent point."),
    "lifeboat_drill_objective_met": ("gauge", "1 if the last drill passed and met its RTO and RPO objectives, 0 if not."),
}

# Labels up to the last '}': an escaped label value may itself hold '}' (a database named 'a}b').
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{.*\}\s+(\S+)$")
_HEADER = re.compile(r"^# (HELP|TYPE) (lifeboat_[a-zA-Z0-9_:]*) (.*)$")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def path_for(metrics_dir, profile, stem="lifeboat"):
    return os.path.join(metrics_dir, "%s_%s.prom" % (stem, profile))


def read(metrics_dir, profile, stem="lifeboat"):
    return _read(metrics_dir, profile, stem)[0]


def _read(metrics_dir, profile, stem="lifeboat"):
    """Values, and the families of lifeboat metrics the catalogue does not declare (another version wrote them)."""
    values, described, foreign = {}, {}, {}
    try:
        with open(path_for(metrics_dir, profile, stem), "r", encoding="utf-8") as handle:
            for line in handle:
                header = _HEADER.match(line.strip())
                if header:
                    described.setdefault(header.group(2), {})[header.group(1)] = header.group(3)
                match = _LINE.match(line.strip())
                family = described.get(match.group(1), {}) if match else {}
                if match and match.group(1) not in REGISTRY and family.get("TYPE") in ("gauge", "counter"):
                    foreign[match.group(1)] = (family["TYPE"], family.get("HELP", ""))
                if match and (match.group(1) in REGISTRY or match.group(1) in foreign):
                    values[match.group(1)] = float(match.group(2))
    except (OSError, ValueError):
        pass  # a missing or unreadable file starts the counters again
    return values, foreign


def update(metrics_dir, profile, database, values=None, increment=(), labels=None, stem="lifeboat"):
    """Set gauges in ``values``, add to counters in ``increment``, rewrite the file.

    ``increment``: counter names (each + 1) or a mapping of counter name to amount. ``labels`` (a mapping or pairs)
    replaces the profile and database labels, and ``stem`` names a file of its own, for metrics about something else:
    a credential (``{"role": ...}``), a drill (profile, source_host).
    """
    current, foreign = _read(metrics_dir, profile, stem)
    unknown = sorted(set(values or {}).union(increment) - set(REGISTRY))
    if unknown:
        raise ValueError("metrics %s are not declared in the catalogue (_report/metrics.py REGISTRY)" % ", ".join(unknown))
    current.update(values or {})
    amounts = increment if isinstance(increment, dict) else dict((name, 1) for name in increment)
    for name, amount in amounts.items():
        current[name] = current.get(name, 0) + amount
    for name, family in REGISTRY.items():
        if family[0] == "counter" and labels is None:
            current.setdefault(name, 0)
    pairs = labels.items() if isinstance(labels, dict) else labels if labels is not None else (("profile", profile), ("database", database))
    labels = ",".join('%s="%s"' % (key, _escape(value)) for key, value in pairs)
    lines = []
    for name in sorted(current):
        kind, help_text = REGISTRY.get(name) or foreign[name]
        lines += ["# HELP %s %s" % (name, help_text), "# TYPE %s %s" % (name, kind), "%s{%s} %s" % (name, labels, _number(current[name]))]
    # Readable by node_exporter through the directory's group (the monitoring role makes it setgid), never by everyone.
    ensure_dir(metrics_dir, 0o750)
    atomic_write(path_for(metrics_dir, profile, stem), ("\n".join(lines) + "\n").encode("utf-8"), mode=0o640)
    return current


def _number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))
