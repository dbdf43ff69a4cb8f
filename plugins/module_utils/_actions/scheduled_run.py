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
from .._store import catalog as _catalog
from .._store import retention as _retention
from . import backup as _dump
from . import prune as _prune
from . import push as _offsite_push
from . import remote_prune as _offsite_prune
from . import verify as _verify


def _local_policy(config, profile):
    return _retention.configured(get_profile(config, profile)["retention"])


def _remote_policy(config, profile):
    return _offsite_prune.policy_for(config, profile) if _remote.enabled(config, profile) else None


def _push(config, profile, report, via):
    """Push the verified backup, with any earlier ones a failed push left behind."""
    if _remote.enabled(config, profile):
        report["offsite"] = [_offsite_push.push(config, entry, via=via) for entry in _remote.pending(config, profile)]
    else:
        report["offsite"] = None


def _prune_local(config, profile, report, via):
    """Local retention, unless the profile has no policy at all."""
    policy = _local_policy(config, profile)
    report["prune"] = _prune.prune(config, profile, policy, via=via) if policy else None


def _prune_remote(config, profile, report, via):
    """The same retention in the bucket (offsite.retention, else the profile's)."""
    policy = _remote_policy(config, profile)
    report["prune_remote"] = _offsite_prune.prune(config, profile, policy, via=via) if policy else None


# After the backup, in this order: a failed push stops the run before anything is deleted.
STEPS = (("push", _push), ("prune", _prune_local), ("prune_remote", _prune_remote))


def plan_profile(config, profile):
    """What a run would do (check mode): the backup's plan and which follow-up steps are configured."""
    return {"profile": profile, "backup": _dump.plan(config, profile), "offsite": _remote.enabled(config, profile),
            "prune": _local_policy(config, profile), "prune_remote": _remote_policy(config, profile)}


def run_profile(config, profile, via="cron", identity_file=None):
    """Run every step; returns the report, or raises the failing step's error (named) after notifying.

    The backup is read back at archive level: through a one-time recipient, or with ``identity_file`` (a
    long-lived identity), in which case the backup holds no one-time recipient.
    """
    notifier = _notify.Notifier(config, profile)
    notifier.start()
    report = {"profile": profile, "started": time.time(), "steps": {}}
    step = "config"
    try:
        get_profile(config, profile)
        step = "backup"
        if identity_file:
            result = _dump.backup(config, profile, via=via)
            entry = _catalog.resolve(path=result["path"])
            result["verification"] = _verify.verify(config, entry, "archive", identity_file=identity_file, via=via)
        else:
            result = _dump.backup(config, profile, via=via, verify="archive")
        report["backup"] = result
        report["steps"].update(backup=result["duration_seconds"], verify=result["verification"]["duration_seconds"])
        for step, func in STEPS:
            began = time.time()
            func(config, profile, report, via)
            report["steps"][step] = round(time.time() - began, 3)
    except BaseException as exc:  # interrupts too: the receiver must hear about every run that did not finish
        if step == "backup" and isinstance(exc, VerifyError):
            step = "verify"  # the backup was written; reading it back failed
        _finish(config, profile, notifier, report, step, exc, via)
        if isinstance(exc, LifeboatError):
            exc.args = ("run of profile %s failed at step %s: %s" % (profile, step, exc),)
        raise
    _finish(config, profile, notifier, report, None, None, via)
    return report


def _finish(config, profile, notifier, report, step, error, via):
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
                      duration_seconds=report["duration_seconds"], via=via,
                      detail=("failed at step %s" % step) if error is not None else "steps %s" % ", ".join(report["steps"]))
    except (LifeboatError, OSError):
        pass  # the step's own error (maybe this very disk) is the one to report
