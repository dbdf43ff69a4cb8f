# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper around every action: timer, audit line, metrics, undo, and the one error message.

    with Operation(config, "restore", "restore backup %s into %s" % (entry.id, target), via, profile=..., database=...) as op:
        op.on_failure(increment=[...])           # metrics written if it fails or is interrupted
        ...
        op.undo(lambda: drop_database(...))      # runs if the action fails or is interrupted
        op.audit(bytes=...)                      # more fields for the audit line
        op.on_success(values={...})              # metrics written when it succeeds
    result["duration_seconds"] = op.duration

An engine error leaves as ``<kind>("Failed to <action> <what>: <cause>")`` raised from the original error; an
interruption (SIGTERM arrives as KeyboardInterrupt, see _front/cli.py) runs the undo steps and writes its audit
line too, then goes on. Check mode records nothing. Recording never hides the action's own error: a full log disk
while failing is ignored, while succeeding it becomes a warning in ``op.warnings``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import sys
import time

from .._errors import LifeboatError, StorageError
from .._report import audit as _audit
from .._report import metrics as _metrics
from .._store.files import foreign_owner


class Operation:
    def __init__(self, config, action, doing, via="module", check_mode=False, message=None, kind=None, keep=(), **audit):
        self.config = config
        self.action = action  # the audit log's name for it
        self.message = message or "Failed to %s" % doing  # doing: "dump database shop (profile full)"
        self.via = via
        self.check_mode = check_mode
        self.kind = kind  # the error class raised; None keeps the original's (and so its exit code)
        self.keep = keep  # error classes that leave unchanged: their message already says everything
        self.failure_metrics = None
        self.fields = dict(audit)
        self.success_metrics = None
        self.undo_steps = []
        self.warnings = []
        self.started = self.duration = None

    @property
    def profile(self):
        return self.fields.get("profile")

    @property
    def database(self):
        return self.fields.get("database")

    def audit(self, **fields):
        self.fields.update(fields)

    def on_success(self, values=None, increment=()):
        self.success_metrics = {"values": values, "increment": increment}

    def on_failure(self, values=None, increment=()):
        """Metrics written when the action fails or is interrupted; say so first thing in the block."""
        self.failure_metrics = {"values": values, "increment": increment}

    def undo(self, step):
        self.undo_steps.append(step)

    def elapsed(self):
        return round(time.time() - self.started, 3)

    def __enter__(self):
        self.started = time.time()
        if not self.check_mode:
            self._refuse_root_in_foreign_tree()
        return self

    def _refuse_root_in_foreign_tree(self):
        """Before anything is written (not even the audit line): root in a tree the backup user owns is refused."""
        root = self.config.get("backup_root")
        paths = [root, os.path.join(root, self.profile)] if root and self.profile else [root]
        found = foreign_owner([p for p in paths + [self.config.get("log_dir"), self.config.get("metrics_dir")] if p])
        if not found:
            return
        path, owner = found
        if self.via == "cli":
            command = "lifeboat " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
            how = "runuser -u %s -- %s (or sudo -u %s %s)" % (owner, command, owner, command)
        else:
            how = "become: true and become_user: %s on the task" % owner
        raise StorageError("%s: %s belongs to %s, but lifeboat runs as root: what root writes there %s could not "
                           "replace or prune later (its prune would report it as damaged); run it as %s: %s"
                           % (self.message, path, owner, owner, owner, how))

    def __exit__(self, kind, exc, traceback):
        self.duration = self.elapsed()
        if exc is None:
            if not self.check_mode:
                self._record("ok", None, self.success_metrics, warn=True)
            return False
        error = exc
        if isinstance(exc, LifeboatError) and not isinstance(exc, self.keep):
            error = (self.kind or type(exc))("%s: %s" % (self.message, exc))
        elif not isinstance(exc, (LifeboatError, KeyboardInterrupt, SystemExit)):
            return False  # a bug: its traceback is what helps
        self._undo()
        if not self.check_mode:
            interrupted = not isinstance(exc, LifeboatError)
            self._record("interrupted" if interrupted else "failed", str(error) or "interrupted by a signal",
                         self.failure_metrics, warn=False)
        if error is exc:
            return False
        raise error from exc

    def _undo(self):
        while self.undo_steps:
            step = self.undo_steps.pop()
            try:
                step()
            except LifeboatError as exc:
                self.warnings.append("cleanup after the failed %s: %s" % (self.action, exc))

    def _record(self, result, error, metrics, warn):
        fields = dict(self.fields, duration_seconds=self.duration)
        try:
            _audit.record(self.config["log_dir"], self.action, result=result, error=error, via=self.via, **fields)
            if metrics and self.database is not None:
                _metrics.update(self.config["metrics_dir"], self.profile, self.database, **metrics)
        except LifeboatError as exc:
            if warn:
                self.warnings.append(str(exc))
