"""Prometheus textfile metrics: rewritten whole each time, counters carried over from the previous file."""

import os
import stat

import pytest


@pytest.fixture
def metrics_dir(tmp_path):
    return str(tmp_path / "metrics")


def text(metrics_dir, profile="shop"):
    with open(os.path.join(metrics_dir, "lifeboat_%s.prom" % profile)) as handle:
        return handle.read()


def samples(metrics_dir, profile="shop"):
    return dict(line.rsplit(" ", 1) for line in text(metrics_dir, profile).splitlines() if not line.startswith("#"))


def test_first_success_writes_every_family_with_help_and_type(engine, metrics_dir):
    engine.metrics.update(metrics_dir, "shop", "shop_db", values={
        "lifeboat_backup_last_success_timestamp_seconds": 1795312800.25,
        "lifeboat_backup_size_bytes": 123456,
        "lifeboat_backup_duration_seconds": 12.0,
    })
    labels = '{profile="shop",database="shop_db"}'
    written = samples(metrics_dir)
    # every registered counter starts at 0 (later features register their own families)
    counters = [name for name, (kind, _help) in engine.metrics.REGISTRY.items() if kind == "counter"]
    failures = ("lifeboat_backup_failures_total", "lifeboat_verify_failures_total")
    assert all(written.pop(name + labels) == "0" for name in counters if name not in failures)
    assert written == {
        "lifeboat_backup_duration_seconds" + labels: "12",
        "lifeboat_backup_failures_total" + labels: "0",
        "lifeboat_backup_last_success_timestamp_seconds" + labels: "1795312800.25",
        "lifeboat_backup_size_bytes" + labels: "123456",
        "lifeboat_verify_failures_total" + labels: "0",
    }
    content = text(metrics_dir)
    assert "# TYPE lifeboat_backup_failures_total counter\n" in content
    assert "# TYPE lifeboat_backup_size_bytes gauge\n" in content
    assert "# HELP lifeboat_backup_size_bytes " in content and content.endswith("\n")
    # node_exporter runs as another user and reads the file through its group, never as everyone
    assert stat.S_IMODE(os.stat(os.path.join(metrics_dir, "lifeboat_shop.prom")).st_mode) == 0o640
    assert os.listdir(metrics_dir) == ["lifeboat_shop.prom"]  # no temporary file left


def test_counters_persist_and_gauges_survive_a_failure(engine, metrics_dir):
    engine.metrics.update(metrics_dir, "shop", "shop_db", values={"lifeboat_backup_last_success_timestamp_seconds": 100})
    for _attempt in range(3):
        engine.metrics.update(metrics_dir, "shop", "shop_db", values={"lifeboat_backup_last_run_success": 0},
                              increment=["lifeboat_backup_failures_total"])
    engine.metrics.update(metrics_dir, "shop", "shop_db", increment=["lifeboat_verify_failures_total"])
    current = engine.metrics.read(metrics_dir, "shop")
    assert current["lifeboat_backup_failures_total"] == 3 and current["lifeboat_verify_failures_total"] == 1
    assert current["lifeboat_backup_last_success_timestamp_seconds"] == 100  # the last success is still the last success
    assert current["lifeboat_backup_last_run_success"] == 0


def test_profiles_have_files_of_their_own(engine, metrics_dir):
    engine.metrics.update(metrics_dir, "a", "db", increment=["lifeboat_backup_failures_total"])
    engine.metrics.update(metrics_dir, "b", "db", increment=["lifeboat_backup_failures_total"])
    engine.metrics.update(metrics_dir, "a", "db", increment=["lifeboat_backup_failures_total"])
    assert engine.metrics.read(metrics_dir, "a")["lifeboat_backup_failures_total"] == 2
    assert engine.metrics.read(metrics_dir, "b")["lifeboat_backup_failures_total"] == 1


@pytest.mark.parametrize("database", ['we"ird', "back\\slash", "a}b {c}", "new\nline", "ünï cødé"])
def test_awkward_database_names_are_escaped_and_counters_still_persist(engine, metrics_dir, database):
    for _attempt in range(2):
        engine.metrics.update(metrics_dir, "shop", database, increment=["lifeboat_backup_failures_total"])
    assert engine.metrics.read(metrics_dir, "shop")["lifeboat_backup_failures_total"] == 2
    escaped = database.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    assert 'lifeboat_backup_failures_total{profile="shop",database="%s"} 2\n' % escaped in text(metrics_dir)
    assert all(line.startswith(("#", "lifeboat_")) for line in text(metrics_dir).splitlines())


def test_a_damaged_file_starts_the_counters_again(engine, metrics_dir):
    os.makedirs(metrics_dir)
    with open(os.path.join(metrics_dir, "lifeboat_shop.prom"), "w") as handle:
        handle.write("garbage\nlifeboat_backup_failures_total{profile=\"shop\"} not-a-number\nunknown_metric{a=\"b\"} 5\n")
    engine.metrics.update(metrics_dir, "shop", "db", increment=["lifeboat_backup_failures_total"])
    current = engine.metrics.read(metrics_dir, "shop")
    assert current["lifeboat_backup_failures_total"] == 1
    assert set(current.values()) == {0, 1} and "unknown_metric" not in current
    assert "garbage" not in text(metrics_dir) and "unknown_metric" not in text(metrics_dir)


def test_families_another_version_wrote_are_kept(engine, metrics_dir):
    os.makedirs(metrics_dir)
    with open(os.path.join(metrics_dir, "lifeboat_shop.prom"), "w") as handle:
        handle.write("# HELP lifeboat_test_only_total A family of a later version.\n# TYPE lifeboat_test_only_total counter\n"
                     'lifeboat_test_only_total{profile="shop",database="db"} 2\n')
    engine.metrics.update(metrics_dir, "shop", "db", increment=["lifeboat_backup_failures_total"])
    assert engine.metrics.read(metrics_dir, "shop")["lifeboat_test_only_total"] == 2
    assert "# HELP lifeboat_test_only_total A family of a later version.\n" in text(metrics_dir)
    assert "lifeboat_test_only_total" not in engine.metrics.REGISTRY


def test_every_metric_is_declared_in_the_catalogue(engine, metrics_dir):
    with pytest.raises(ValueError, match="lifeboat_undeclared_total are not declared"):
        engine.metrics.update(metrics_dir, "shop", "db", increment=["lifeboat_undeclared_total"])


def test_numbers(engine):
    assert engine.metrics._number(3.0) == "3" and engine.metrics._number(0) == "0"
    assert engine.metrics._number(1795312800.123456) == "1795312800.123456"
