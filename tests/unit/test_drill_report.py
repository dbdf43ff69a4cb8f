"""Drill settings and reports: the schema's drill section, the filled-in checklist, the self-contained HTML trend."""

import json
import os

import pytest

STAGES = ("select", "fetch", "restore", "checks", "teardown")


def config_error(engine, drill):
    with pytest.raises(engine.errors.ConfigError) as caught:
        engine.config.validate_config({"profiles": {"app": {"db": "app", "drill": drill}}})
    return str(caught.value)


def test_drill_section_defaults_and_messages(engine):
    drill = engine.config.validate_config({"profiles": {"app": {"db": "app"}}})["profiles"]["app"]["drill"]
    assert drill["schedule"] == "0 4 1 */3 *" and drill["source"] == "offsite" and drill["checks"] == []
    assert "profiles.app.drill.rto_objective: must be a duration" in config_error(engine, {"rto_objective": "4 hours"})
    assert "exactly name and sql" in config_error(engine, {"checks": [{"name": "x"}]})
    assert "'x' is used twice" in config_error(engine, {"checks": [{"name": "x", "sql": "select true"}] * 2})
    assert "must be one of offsite, local" in config_error(engine, {"source": "tape"})


def document(started, rto, rpo, ok=True, met=True):
    stage = {"seconds": 1.0, "outcome": "ok" if ok else "failed: x"}
    return {
        "profile": "shop", "drill_host": "drill1", "source": "offsite", "source_note": None, "started_at": started,
        "ok": ok, "error": None if ok else "checks failed", "backup": {"id": "20261201T000000Z", "location": "s3://b/k/"},
        "scratch_database": "lifeboat_drill_shop_x", "jobs": 1, "kept": [], "rto_seconds": rto, "rpo_seconds": rpo,
        "freshness_lag_seconds": 30.0, "stages": dict((s, stage) for s in STAGES),
        "objectives": {"rto": {"name": "RTO", "target": "1m", "target_seconds": 60, "measured_seconds": rto, "met": met}},
        "checks": [{"name": "row counts and freshness", "ok": ok, "detail": "4 tables"},
                   {"name": "amcheck", "ok": True, "detail": "5 B-tree indexes"},
                   {"name": "content sample", "ok": None, "detail": "skipped"}],
    }


def test_reports_keep_a_trend_and_the_page_is_self_contained(engine, tmp_path):
    report = engine.drill_report
    for i, started in enumerate(("2026-03-01T04:00:00.000Z", "2026-06-01T04:00:00.000Z", "2026-09-01T04:00:00.000Z")):
        paths = report.write(str(tmp_path), document(started, 20.0 + 30 * i, 600.0, met=i < 2))
    assert sorted(os.listdir(tmp_path / "shop")) == sorted(
        "%s-drill1.%s" % (stamp, ext) for stamp in ("20260301T040000Z", "20260601T040000Z", "20260901T040000Z")
        for ext in ("json", "md", "html"))
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in paths.values())
    page = open(paths["html"]).read()
    assert page.count("<circle") == 6 and "stroke-dasharray" in page  # three drills, two charts; the RTO objective
    assert "<script" not in page and "<link" not in page and "url(" not in page
    markdown = open(paths["markdown"]).read()
    assert "OBJECTIVE MISSED" in markdown and markdown.count("| 2026-0") == 3
    checklist = dict((i["item"], i["done"]) for i in json.load(open(paths["json"]))["checklist"])
    assert checklist["Verify data integrity by random sampling"] is False  # the sample was skipped: not ticked
    assert checklist["Critical tables have the expected row counts"] is True


def test_a_failed_drill_leaves_its_checklist_unticked(engine, tmp_path):
    paths = engine.drill_report.write(str(tmp_path), document("2026-12-01T04:00:00.000Z", None, None, ok=False))
    record = json.load(open(paths["json"]))
    assert [i["done"] for i in record["checklist"]] == [False, False, False, False, False, True]
    assert "FAILED" in open(paths["markdown"]).read()


def test_two_drills_in_the_same_second_keep_both_reports(engine, tmp_path):
    # CI once ran two drills within one second: the second report replaced the first and the trend lost a point.
    first = engine.drill_report.write(str(tmp_path), document("2026-12-01T04:00:00.100Z", 20.0, 600.0))
    second = engine.drill_report.write(str(tmp_path), document("2026-12-01T04:00:00.900Z", 25.0, 600.0))
    assert first["json"] != second["json"] and os.path.exists(first["json"])
    assert json.load(open(first["json"]))["rto_seconds"] == 20.0
    assert open(second["html"]).read().count("<circle") == 4


def test_scratch_database_names_differ_within_one_second_and_fit_postgres(engine):
    names = set(engine.drill.scratch_name("a-very-long-profile-name-that-goes-on-and-on", 1764561600.0) for attempt in range(20))
    assert len(names) > 1 and all(len(n) <= 63 and n.startswith("lifeboat_drill_a_very_long") for n in names)
