# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention policy as a pure function: backups and a policy in, a plan out.

No file system here, so every rule can be tested on generated histories.
Semantics (restic/borg style, UTC):

- Backups are ordered by their manifest's ``consistent_at`` (ties by id),
  never by directory names or modification times.
- ``keep_last N``: the N newest backups.
- ``keep_hourly/daily/weekly/monthly/yearly N``: one backup in each of the
  N newest hours/days/ISO weeks/months/years that have backups. The one kept
  is the newest backup of that period that did not fail verification; a
  period holding only failed backups keeps its newest one (a failed
  verification can be the verifier's fault, e.g. a wrong identity file, so it
  never makes a period look empty).
- ``keep_within D``: every backup whose time is within D of the NEWEST
  BACKUP's time, not of the wall clock: a host whose backups stopped, or
  whose clock jumped forward, never ages all of its backups out at once.
- The newest backup that passed verification is always kept.
- A held backup (``lifeboat hold``) is always kept, with the rule ``hold: <reason>``.
- An empty or all-zero policy is an error, never "delete everything".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from .._config.schema import RETENTION_FIELDS, parse_duration, validate_section
from .._errors import ConfigError

OK = "ok"
FAILED = "failed"
UNVERIFIED = "unverified"

COUNT_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
NEWEST_VERIFIED = "newest verified"
UTC = datetime.timezone.utc


def _hour(moment):
    return moment.strftime("%Y-%m-%dT%H")


def _day(moment):
    return moment.strftime("%Y-%m-%d")


def _week(moment):
    year, week = moment.isocalendar()[:2]
    return "%04d-W%02d" % (year, week)


def _month(moment):
    return moment.strftime("%Y-%m")


def _year(moment):
    return moment.strftime("%Y")


PERIODS = (
    ("keep_hourly", _hour),
    ("keep_daily", _day),
    ("keep_weekly", _week),
    ("keep_monthly", _month),
    ("keep_yearly", _year),
)


class Backup:
    """What the policy needs to know about one complete backup."""

    def __init__(self, backup_id, time, verification=UNVERIFIED, hold=None):
        if verification not in (OK, FAILED, UNVERIFIED):
            raise ValueError("verification must be ok, failed or unverified, got %r" % (verification,))
        self.id = backup_id
        self.time = float(time)
        self.verification = verification
        self.hold = hold  # the reason it is held, or None

    def __repr__(self):
        return "Backup(%r, %r, %r)" % (self.id, self.time, self.verification)


def verification_state(document):
    """The state of a verification.json document (None when never verified)."""
    if not document:
        return UNVERIFIED
    return OK if document.get("ok") else FAILED


class Decision:
    """One backup's fate and the rules that keep it (empty when it is deleted)."""

    def __init__(self, backup):
        self.backup = backup
        self.rules = []

    @property
    def keep(self):
        return bool(self.rules)

    def as_dict(self):
        moment = datetime.datetime.fromtimestamp(self.backup.time, UTC)
        return {
            "id": self.backup.id,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verification": self.backup.verification,
            "action": "keep" if self.keep else "delete",
            "rules": list(self.rules),
        }


def configured(policy):
    """The rules set in ``policy`` (unset ones dropped), or None when none is: such a profile is not pruned."""
    rules = dict((name, value) for name, value in (policy or {}).items() if value is not None)
    return rules or None


def normalize(policy):
    """Validate a retention mapping; return it with zeros and unset keys dropped.

    Raises ConfigError when nothing would be kept by any rule: pruning with an
    empty policy must fail loudly instead of deleting every backup.
    """
    checked = validate_section(policy or {}, RETENTION_FIELDS, "retention")
    result = dict((name, checked[name]) for name in COUNT_RULES if checked[name])
    if checked["keep_within"] and parse_duration(checked["keep_within"]):
        result["keep_within"] = checked["keep_within"]
    if not result:
        raise ConfigError(
            "retention: the policy is empty or all zero, which would delete every backup; set at least one of %s"
            % ", ".join(COUNT_RULES + ("keep_within",))
        )
    return result


def describe(policy):
    """'keep_last=3 keep_daily=7 keep_within=36h' for messages and the audit log."""
    return " ".join("%s=%s" % (name, policy[name]) for name in COUNT_RULES + ("keep_within",) if name in policy)


def plan(backups, policy):
    """Decide for every backup; returns Decisions, newest first."""
    policy = normalize(policy)
    ordered = sorted(backups, key=lambda b: (b.time, b.id), reverse=True)
    decisions = [Decision(b) for b in ordered]
    if not decisions:
        return decisions

    for decision in decisions[: policy.get("keep_last", 0)]:
        decision.rules.append("keep_last")

    for rule, period_of in PERIODS:
        _keep_periods(decisions, rule, period_of, policy.get(rule, 0))

    if "keep_within" in policy:
        oldest_allowed = ordered[0].time - parse_duration(policy["keep_within"])
        for decision in decisions:
            if decision.backup.time >= oldest_allowed:
                decision.rules.append("keep_within %s" % policy["keep_within"])

    for decision in decisions:
        if decision.backup.verification == OK:
            decision.rules.append(NEWEST_VERIFIED)
            break

    for decision in decisions:
        if decision.backup.hold:
            decision.rules.append("hold: %s" % decision.backup.hold)
    return decisions


def plan_for(items, policy, verification_of, hold_of=lambda item: None):
    """Plan for backup-like ``items`` (with ``id`` and ``time``), local or remote alike; ``hold_of`` gives a reason.

    Returns the result fields every prune reports (backups, kept, deleted) and the items to delete.
    """
    by_id = dict((item.id, item) for item in items)
    decisions = plan([Backup(item.id, item.time, verification_of(item), hold_of(item)) for item in items], policy)
    doomed = [by_id[d.backup.id] for d in decisions if not d.keep]
    fields = {
        "backups": [d.as_dict() for d in decisions],
        "kept": [d.backup.id for d in decisions if d.keep],
        "deleted": [item.id for item in doomed],
    }
    return fields, doomed


def _keep_periods(decisions, rule, period_of, count):
    """Keep one backup in each of the ``count`` newest periods that have backups."""
    if count <= 0:
        return
    groups = []  # [(period, [decisions newest first])]; contiguous because ordered by time
    for decision in decisions:
        period = period_of(datetime.datetime.fromtimestamp(decision.backup.time, UTC))
        if groups and groups[-1][0] == period:
            groups[-1][1].append(decision)
        else:
            groups.append((period, [decision]))
    for period, members in groups[:count]:
        chosen = next((d for d in members if d.backup.verification != FAILED), members[0])
        chosen.rules.append("%s %s" % (rule, period))
