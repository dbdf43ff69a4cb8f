"""The one wrapper every action runs in: message, audit line, metrics, undo, interruption, check mode."""

import json
import os

import pytest


@pytest.fixture
def config(tmp_path):
    return {"log_dir": str(tmp_path / "log"), "metrics_dir": str(tmp_path / "metrics")}


def audit(config):
    path = os.path.join(config["log_dir"], "audit.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def metric(engine, config, name):
    return engine.metrics.read(config["metrics_dir"], "shop").get(name)


def operation(engine, config, **options):
    options.setdefault("profile", "shop")
    options.setdefault("database", "db")
    return engine.operation.Operation(config, "prune", "prune profile shop", "cli", **options)


def test_success_writes_one_audit_line_and_its_metrics(engine, config):
    with operation(engine, config, deleted=["a"]) as op:
        op.audit(kept=2)
        op.on_success(values={"lifeboat_prune_kept_backups": 2})
    [line] = audit(config)
    assert (line["action"], line["result"], line["via"], line["deleted"], line["kept"]) == ("prune", "ok", "cli", ["a"], 2)
    assert line["duration_seconds"] == op.duration >= 0
    assert metric(engine, config, "lifeboat_prune_kept_backups") == 2


def test_an_engine_error_gets_the_one_message_and_keeps_its_kind(engine, config):
    errors = engine.errors
    cause = errors.StorageError("no space left on device")
    with pytest.raises(errors.StorageError) as raised:
        with operation(engine, config) as op:
            op.on_failure(increment=["lifeboat_prune_failures_total"])
            raise cause
    assert str(raised.value) == "Failed to prune profile shop: no space left on device"
    assert raised.value.__cause__ is cause
    [line] = audit(config)
    assert line["result"] == "failed" and line["error"] == str(raised.value)
    assert metric(engine, config, "lifeboat_prune_failures_total") == 1


def test_kind_message_and_kept_errors(engine, config):
    errors = engine.errors
    with pytest.raises(errors.VerifyError, match=r"^Verification \(archive\) of backup X failed: bad$"):
        with operation(engine, config, kind=errors.VerifyError, message="Verification (archive) of backup X failed"):
            raise errors.StorageError("bad")
    kept = errors.LockError("profile shop is locked by another run")
    with pytest.raises(errors.LockError) as raised:
        with operation(engine, config, keep=(errors.LockError,)):
            raise kept
    assert raised.value is kept
    assert [line["result"] for line in audit(config)] == ["failed", "failed"]


def test_an_interruption_runs_the_undo_steps_and_is_audited(engine, config):
    undone = []
    with pytest.raises(KeyboardInterrupt):
        with operation(engine, config) as op:
            op.undo(lambda: undone.append("first"))
            op.undo(lambda: undone.append("second"))
            raise KeyboardInterrupt("terminated by signal 15")
    assert undone == ["second", "first"]  # last made, first undone
    [line] = audit(config)
    assert line["result"] == "interrupted" and line["error"] == "terminated by signal 15"


def test_a_failing_undo_step_does_not_hide_the_error(engine, config):
    errors = engine.errors

    def broken():
        raise errors.DatabaseError("server gone")

    with pytest.raises(errors.RestoreError, match="pg_restore exited with status 1"):
        with operation(engine, config) as op:
            op.undo(broken)
            raise errors.RestoreError("pg_restore exited with status 1")
    assert op.warnings == ["cleanup after the failed prune: server gone"]


def test_check_mode_records_nothing(engine, config):
    errors = engine.errors
    with operation(engine, config, check_mode=True) as op:
        op.on_success(values={"lifeboat_prune_kept_backups": 2})
    with pytest.raises(errors.StorageError, match="^Failed to prune profile shop: bad$"):
        with operation(engine, config, check_mode=True):
            raise errors.StorageError("bad")
    assert audit(config) == [] and not os.path.exists(config["metrics_dir"])


def test_a_bug_keeps_its_traceback_and_is_not_reworded(engine, config):
    with pytest.raises(ZeroDivisionError):
        with operation(engine, config):
            1 / 0  # noqa: B018
    assert audit(config) == []


def test_an_unwritable_log_warns_on_success_and_stays_quiet_on_failure(engine, config, tmp_path):
    errors = engine.errors
    (tmp_path / "log").write_text("a file where the log directory should be")
    with operation(engine, config) as op:
        pass
    assert len(op.warnings) == 1 and "log" in op.warnings[0]
    with pytest.raises(errors.StorageError, match="^Failed to prune profile shop: bad$"):
        with operation(engine, config):
            raise errors.StorageError("bad")
