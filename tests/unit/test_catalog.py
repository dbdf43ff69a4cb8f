"""The catalog: backups ordered by the snapshot time in their manifests (never by directory names), and health."""

import json
import os
import shutil

import pytest

DAY = 86400.0


def make(engine, root, profile, name, when, size=100, encryption="age"):
    """A backup directory with a sealed manifest whose snapshot is at ``when``."""
    path = os.path.join(root, profile, name)
    os.makedirs(path)
    engine.manifest.write(path, {
        "backup_id": name, "profile": profile, "database": "db", "duration_seconds": 1.5,
        "consistent_at": engine.manifest.iso(when),
        "artifacts": [{"name": "db.dump.zst.age", "kind": "database", "bytes": size, "sha256": "0" * 64, "encryption": encryption}],
        "tables": [],
    })
    return path


@pytest.fixture
def root(engine, tmp_path):
    """Names sort one way, snapshot times another: a restored copy, a clock that was wrong, a suffix."""
    base = str(tmp_path / "backups")
    t0 = 1795312800.0  # 2026-11-22T02:00:00Z
    make(engine, base, "shop", "20261122T020000Z", t0 - 1 * DAY, size=10)
    make(engine, base, "shop", "20261120T020000Z", t0, size=20)  # newest snapshot, oldest-looking name
    make(engine, base, "shop", "20261121T020000Z-1", t0 - 3 * DAY, size=30)
    make(engine, base, "shop", "copied-by-hand", t0 - 2 * DAY, size=40)
    os.makedirs(os.path.join(base, "shop", "20261123T020000Z.partial"))
    os.makedirs(os.path.join(base, "shop", "20261123T030000Z"))  # no manifest
    manifest = os.path.join(make(engine, base, "shop", "20261124T020000Z", t0 + DAY), "manifest.json")
    with open(manifest) as handle:
        document = json.load(handle)
    document["database"] = "other"  # still JSON, no longer what was sealed
    with open(manifest, "w") as handle:
        json.dump(document, handle)
    open(os.path.join(base, "shop", "stray-file"), "w").close()
    return base, t0


def test_scan_orders_complete_backups_by_snapshot_time(engine, root):
    base = root[0]
    entries = engine.catalog.scan(base, "shop")
    assert [(e.id, e.status) for e in entries] == [
        ("20261121T020000Z-1", "complete"),
        ("copied-by-hand", "complete"),
        ("20261122T020000Z", "complete"),
        ("20261120T020000Z", "complete"),
        ("20261123T020000Z.partial", "incomplete"),
        ("20261123T030000Z", "incomplete"),
        ("20261124T020000Z", "damaged"),
    ]
    assert entries[-1].error.endswith("is damaged: its checksum does not match its content")
    assert entries[-2].error == "no manifest"


def test_newest_is_by_snapshot_time(engine, root):
    base = root[0]
    shutil.rmtree(os.path.join(base, "shop", "20261124T020000Z"))  # the damaged newest: see the next test
    assert engine.catalog.resolve(base, "shop").id == "20261120T020000Z"
    assert [e.id for e in engine.catalog.complete_backups(base, "shop")][-1] == "20261120T020000Z"


def test_latest_means_the_newest_even_when_it_is_damaged(engine, root):
    base = root[0]
    with pytest.raises(engine.errors.VerifyError, match=r"^the newest backup of profile shop, 20261124T020000Z, is damaged "
                       r"\(manifest of .* is damaged: its checksum does not match its content\); name an older one by its id"):
        engine.catalog.resolve(base, "shop")
    assert engine.catalog.resolve(base, "shop", "20261120T020000Z").id == "20261120T020000Z"  # by id: fine
    assert [e.id for e in engine.catalog.complete_backups(base, "shop")][-1] == "20261120T020000Z"


def test_a_damaged_backup_older_than_the_newest_does_not_stop_latest(engine, tmp_path):
    base = str(tmp_path)
    make(engine, base, "p", "20261122T020000Z", 1795312800.0)
    os.makedirs(os.path.join(base, "p", "20261121T020000Z"))
    with open(os.path.join(base, "p", "20261121T020000Z", "manifest.json"), "w") as handle:
        handle.write("{")  # damaged, but a day older than the complete one
    assert engine.catalog.resolve(base, "p").id == "20261122T020000Z"


def test_a_damaged_backup_taken_in_the_same_second_is_still_the_newest(engine, tmp_path):
    base = str(tmp_path)
    make(engine, base, "p", "20261122T020000Z", 1795312800.6)  # snapshot 0.6 s after the second its id names
    os.makedirs(os.path.join(base, "p", "20261122T020000Z-1"))  # the next backup, same second, damaged
    with open(os.path.join(base, "p", "20261122T020000Z-1", "manifest.json"), "w") as handle:
        handle.write("{")
    with pytest.raises(engine.errors.VerifyError, match="newest backup of profile p, 20261122T020000Z-1, is damaged"):
        engine.catalog.resolve(base, "p")


def test_equal_times_fall_back_to_the_id(engine, tmp_path):
    base = str(tmp_path)
    make(engine, base, "p", "b", 1000.0)
    make(engine, base, "p", "a", 1000.0)
    assert [e.id for e in engine.catalog.scan(base, "p")] == ["a", "b"]


def test_resolve_by_id_and_by_path(engine, root):
    base = root[0]
    assert engine.catalog.resolve(base, "shop", "copied-by-hand").manifest["backup_id"] == "copied-by-hand"
    with pytest.raises(engine.errors.NotFoundError, match="^backup 20261123T030000Z of profile shop not found under "):
        engine.catalog.resolve(base, "shop", "20261123T030000Z")  # there, but not a backup
    with pytest.raises(engine.errors.NotFoundError, match="has no manifest: it is not a complete backup$"):
        engine.catalog.resolve(path=os.path.join(base, "shop", "20261123T030000Z"))
    with pytest.raises(engine.errors.VerifyError, match="is damaged"):
        engine.catalog.resolve(path=os.path.join(base, "shop", "20261124T020000Z"))
    with pytest.raises(engine.errors.NotFoundError, match="^profile empty has no complete backup under "):
        engine.catalog.resolve(base, "empty")
    with pytest.raises(engine.errors.ConfigError, match="bad profile name '../shop'"):
        engine.catalog.resolve(base, "../shop")


def test_health(engine, root):
    base, t0 = root
    newest = os.path.join(base, "shop", "20261120T020000Z")
    older = os.path.join(base, "shop", "20261122T020000Z")
    engine.catalog.record_verification(older, {"level": "restore", "ok": True})
    engine.catalog.record_verification(newest, {"level": "archive", "ok": False})
    health = engine.catalog.health(base, "shop", now=t0 + 3600)
    assert health == {
        "profile": "shop",
        "count": 4,
        "total_bytes": 100,
        "newest_id": "20261120T020000Z",
        "newest_age_seconds": 3600.0,
        "newest_verified_id": "20261122T020000Z",  # the newest that passed, by time
        "incomplete": ["20261123T020000Z.partial", "20261123T030000Z", "20261124T020000Z"],
        "in_progress": [],
        "held": {},
    }


def test_a_partial_directory_is_in_progress_while_the_profile_is_locked(engine, root):
    base = root[0]
    with engine.storage.ProfileLock(os.path.join(base, "shop"), "shop"):
        health = engine.catalog.health(base, "shop")
    assert health["in_progress"] == ["20261123T020000Z.partial"]
    assert "20261123T020000Z.partial" not in health["incomplete"]


def test_profiles_lists_profile_directories_only(engine, root):
    base = root[0]
    os.makedirs(os.path.join(base, ".log"))
    os.makedirs(os.path.join(base, ".metrics"))
    open(os.path.join(base, "not-a-dir"), "w").close()
    make(engine, base, "payments-hourly", "x", 5.0)
    assert engine.catalog.profiles(base) == ["payments-hourly", "shop"]
    assert engine.catalog.profiles(os.path.join(base, "missing")) == []
    assert engine.catalog.scan(base, "never-ran") == []


def test_report_summaries(engine, root):
    base = root[0]
    report = engine.catalog.report(base, "shop")
    first = report["backups"][0]
    assert first["id"] == "20261121T020000Z-1" and first["status"] == "complete" and first["bytes"] == 30
    assert first["time"].endswith("Z") and first["database"] == "db" and first["encrypted"] is True
    assert first["verification"] is None
    assert report["backups"][-1]["status"] == "damaged" and "error" in report["backups"][-1]
    assert report["health"]["count"] == 4
