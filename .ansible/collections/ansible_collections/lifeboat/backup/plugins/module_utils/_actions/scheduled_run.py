# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled run of one profile (``lifeboat run``, what cron starts).

dead-man /start -> backup read back at archive level -> push offsite ->
prune locally -> prune offsite -> success ping, or /fail and the webhook.
Whatever fails, the failure is notified before the error leaves, and the
error names the step. Notifications never fail the run and wait at most
their timeout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys
import time

from .._config.schema import get_profile
from .._errors import LifeboatError, VerifyError
from .._offsite import remote as _remote
from .._report import audit as _audit
from .._report import notify as _notify
from .._store import retention as _retention
from . import backup as _dump
from . import prune as _prune
from . import push as _offsite_push
from . import remote_prune as _offsite_prune


def _push(config, profile, report):
    """Push the verified backup, with any earlier ones a failed push left behind."""
    if _remote.enabled(config, profile):
        report["offsite"] = [_offsite_push.push(config, entry, via="cron") for entry in _remote.pending(config, profile)]
    else:
        report["offsite"] = None


def _prune_local(config, profile, report):
    """Local retention, unless the profile has no policy at all."""
    policy = _retention.configured(get_profile(config, profile)["retention"])
    report["prune"] = _prune.prune(config, profile, policy, via="cron") if policy else None


def _prune_remote(config, profile, report):
    """The same retention in the bucket (offsite.retention, else the profile's)."""
    policy = _offsite_prune.policy_for(config, profile) if _remote.enabled(config, profile) else None
    report["prune_remote"] = _offsite_prune.prune(config, profile, policy, via="cron") if policy else None


# After the backup, in this order: a failed push stops the run before anything is deleted.
STEPS = (("push", _push), ("prune", _prune_local), ("prune_remote", _prune_remote))


def run_profile(config, profile):
    """Run every step; returns the report, or raises the failing step's error (named) after notifying."""
    notifier = _notify.Notifier(config, profile)
    notifier.start()
    report = {"profile": profile, "started": time.time(), "steps": {}}
    step = "config"
    try:
        get_profile(config, profile)
        step = "backup"
        result = _dump.backup(config, profile, via="cron", verify="archive")
        report["backup"] = result
        report["steps"].update(backup=result["duration_seconds"], verify=result["verification"]["duration_seconds"])
        for step, func in STEPS:
            began = time.time()
            func(config, profile, report)
            report["steps"][step] = round(time.time() - began, 3)
    except BaseException as exc:  # interrupts too: the receiver must hear about every run that did not finish
        if step == "backup" and isinstance(exc, VerifyError):
            step = "verify"  # the backup was written; reading it back failed
        _finish(config, profile, notifier, report, step, exc)
        if isinstance(exc, LifeboatError):
            exc.args = ("run of profile %s failed at step %s: %s" % (profile, step, exc),)
        raise
    _finish(config, profile, notifier, report, None, None)
    return report


def _finish(config, profile, notifier, report, step, error):
    report.update(finished=time.time(), ok=error is None, failed_step=step)
    report["duration_seconds"] = round(report["finished"] - report["started"], 3)
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        error = LifeboatError("interrupted")
    report["notifications"] = notifier.failure(report, error) if error is not None else notifier.success(report)
    for outcome in report["notifications"]:
        if not outcome["ok"]:  # the cron log keeps stderr too
            sys.stderr.write("lifeboat: warning: %s delivery (%s) failed: %s\n" % (outcome["target"], outcome["event"], outcome["error"]))
    try:
        _audit.record(config["log_dir"], "run", profile=profile, result="failed" if error is not None else "ok",
                      error=_notify.redact(error, notifier.secrets) if error is not None else None,
                      duration_seconds=report["duration_seconds"], via="cron",
                      detail=("failed at step %s" % step) if error is not None else "steps %s" % ", ".join(report["steps"]))
    except (LifeboatError, OSError):
        pass  # the step's own error (maybe this very disk) is the one to report
