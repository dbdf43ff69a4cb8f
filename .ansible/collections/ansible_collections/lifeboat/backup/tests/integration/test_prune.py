"""Retention on real backups: the prune module (check mode, run, state, rerun) and `lifeboat prune`.

History is made honestly: one real backup of the sample shop is taken, then copied into other
backup ids whose manifests are re-sealed (engine _manifest.write) with other consistent_at times.
The artifacts stay real, so checksum verification of the copies is a real verification. Some ids
deliberately disagree with their manifest time: the engine must order by the manifest.
"""

import datetime
import json
import os
import shutil

import pytest

UTC = datetime.timezone.utc


def at(day, hour=2, minute=0):
    return datetime.datetime(2025, 1, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.fixture
def real_backup(engine, make_config, shop_db, tmp_path):
    """Path of one real, encrypted backup of a fresh shop copy, outside the backup root under test."""
    config = make_config({"shop": {"db": shop_db}}, backup_root=str(tmp_path / "template"))
    return engine.dump.backup(config, "shop", via="test")["path"]


def clone(engine, source, profile_dir, backup_id, when):
    target = os.path.join(profile_dir, backup_id)
    shutil.copytree(source, target)
    os.chmod(target, 0o700)
    document = engine.manifest.read(target)
    document.update(backup_id=backup_id, consistent_at=engine.manifest.iso(when),
                    started_at=engine.manifest.iso(when - 1), finished_at=engine.manifest.iso(when + 2))
    engine.manifest.write(target, document)
    return target


# id -> manifest time. 20250109T020000Z was taken with a clock one day and three hours behind: by its
# snapshot it is the newest backup of 8 January, not a backup of 9 January.
HISTORY = {
    "20250101T020000Z": at(1),
    "20250102T020000Z": at(2),
    "20250103T020000Z": at(3),
    "20250104T020000Z": at(4),
    "20250105T020000Z": at(5),
    "20250106T020000Z": at(6),
    "20250107T020000Z": at(7),
    "20250108T020000Z": at(8),
    "20250109T020000Z": at(8, 23),
    "20250110T020000Z": at(10),
    "20250110T030000Z": at(10, 3),
}
POLICY = {"keep_last": 2, "keep_daily": 3}
# Newest first by manifest time: 10 03:00 (last, daily 10), 10 02:00 (last), 8 23:00 [the "09" id] (daily 08),
# 7 02:00 (daily 07); 2 Jan passed verification and nothing newer did: kept as the newest verified.
EXPECTED_KEPT = {"20250110T030000Z", "20250110T020000Z", "20250109T020000Z", "20250107T020000Z", "20250102T020000Z"}


def make_history(engine, config, real_backup, age_key):
    profile_dir = os.path.join(config["backup_root"], "shop")
    os.makedirs(profile_dir, 0o700)
    for backup_id, when in HISTORY.items():
        clone(engine, real_backup, profile_dir, backup_id, when)
    # 2 Jan: a real checksum verification that passes.
    engine.verify.verify(config, engine.catalog.resolve(config["backup_root"], "shop", "20250102T020000Z"), "checksum", via="test")
    # The two newest: a flipped byte makes their real verification fail.
    for backup_id in ("20250110T030000Z", "20250110T020000Z"):
        entry = engine.catalog.resolve(config["backup_root"], "shop", backup_id)
        artifact = os.path.join(entry.path, entry.manifest["artifacts"][0]["name"])
        with open(artifact, "r+b") as handle:
            handle.seek(200)
            byte = handle.read(1)
            handle.seek(200)
            handle.write(bytes([byte[0] ^ 0xFF]))
        with pytest.raises(engine.errors.VerifyError):
            engine.verify.verify(config, entry, "checksum", via="test")
    # A dead run's leftover (nothing written for two days), a fresh one, and a directory without manifest.
    old = os.path.join(profile_dir, "20241201T020000Z.partial")
    os.makedirs(old)
    with open(os.path.join(old, "shop.dump.zst.age"), "wb") as handle:
        handle.write(b"x" * 100)
    for path in (os.path.join(old, "shop.dump.zst.age"), old):
        os.utime(path, (at(1) - 2 * 86400,) * 2)
    os.makedirs(os.path.join(profile_dir, "20250111T020000Z.partial"))
    os.makedirs(os.path.join(profile_dir, "copied-by-hand"))
    return profile_dir


def listing(profile_dir):
    return sorted(n for n in os.listdir(profile_dir) if not n.startswith("."))


def test_prune_module_check_run_state_rerun(module, engine, make_config, real_backup, age_key, backup_root):
    config = make_config({})
    profile_dir = make_history(engine, config, real_backup, age_key)
    before = listing(profile_dir)
    args = dict(backup_root=backup_root, profile="shop", **POLICY)

    planned = module("prune", args, check=True)
    assert not planned.failed, planned.result
    assert planned.changed
    plan = planned["prune"]
    assert set(plan["kept"]) == EXPECTED_KEPT
    assert set(plan["deleted"]) == set(HISTORY) - EXPECTED_KEPT
    assert plan["leftovers_removed"] == ["20241201T020000Z.partial"]
    rules = dict((b["id"], b["rules"]) for b in plan["backups"])
    assert rules["20250109T020000Z"] == ["keep_daily 2025-01-08"]  # ordered and bucketed by manifest time
    assert rules["20250110T030000Z"] == ["keep_last", "keep_daily 2025-01-10"]
    assert rules["20250102T020000Z"] == ["newest verified"]
    assert [b["id"] for b in plan["backups"]][:3] == ["20250110T030000Z", "20250110T020000Z", "20250109T020000Z"]
    assert {b["id"]: b["verification"] for b in plan["backups"]}["20250110T030000Z"] == "failed"
    skipped = dict((s["id"], s) for s in plan["skipped"])
    assert skipped["copied-by-hand"]["status"] == "incomplete"
    assert skipped["20250111T020000Z.partial"]["status"] == "incomplete"
    assert listing(profile_dir) == before  # check mode touched nothing

    pruned = module("prune", args)
    assert not pruned.failed and pruned.changed, pruned.result
    assert set(pruned["prune"]["deleted"]) == set(plan["deleted"])
    assert pruned["prune"]["freed_bytes"] > 0
    assert set(listing(profile_dir)) == EXPECTED_KEPT | {"20250111T020000Z.partial", "copied-by-hand"}
    # What is left is still a readable catalog, and the kept good backup still verifies.
    kept = engine.catalog.resolve(backup_root, "shop", "20250102T020000Z")
    engine.verify.verify(config, kept, "archive", identity_file=age_key[0], via="test")

    with open(os.path.join(config["log_dir"], "audit.jsonl")) as handle:
        lines = [json.loads(line) for line in handle if '"prune"' in line]
    assert len(lines) == 1  # check mode writes no audit line
    assert lines[0]["result"] == "ok" and sorted(lines[0]["deleted"]) == sorted(plan["deleted"])
    assert lines[0]["kept"] == len(EXPECTED_KEPT) and "keep_last=2 keep_daily=3" in lines[0]["detail"]
    with open(os.path.join(config["metrics_dir"], "lifeboat_shop.prom")) as handle:
        metrics = handle.read()
    assert 'lifeboat_prune_deleted_total{profile="shop",database="%s"} %d' % (
        engine.catalog.resolve(backup_root, "shop").manifest["database"], len(plan["deleted"])) in metrics
    assert "lifeboat_prune_last_success_timestamp_seconds{" in metrics

    again = module("prune", args)
    assert not again.failed and not again.changed, again.result
    assert again["prune"]["deleted"] == [] and again["prune"]["leftovers_removed"] == []


def test_prune_module_refuses_empty_policy_and_leaves_backups(module, engine, make_config, real_backup, age_key, backup_root):
    profile_dir = make_history(engine, make_config({}), real_backup, age_key)
    before = listing(profile_dir)
    for policy in ({}, {"keep_last": 0, "keep_within": "0h"}):
        refused = module("prune", dict(backup_root=backup_root, profile="shop", **policy))
        assert refused.failed and "profile shop: retention: the policy is empty or all zero" in refused["msg"]
    assert listing(profile_dir) == before


def test_prune_leaves_partials_alone_while_a_run_holds_the_lock(module, engine, make_config, real_backup, age_key, backup_root):
    profile_dir = make_history(engine, make_config({}), real_backup, age_key)
    with engine.storage.ProfileLock(profile_dir, "shop"):  # as a backup in progress holds it
        pruned = module("prune", dict(backup_root=backup_root, profile="shop", keep_last=1))
    assert not pruned.failed, pruned.result
    assert pruned["prune"]["leftovers_removed"] == []
    skipped = dict((s["id"], s["status"]) for s in pruned["prune"]["skipped"])
    assert skipped["20241201T020000Z.partial"] == "in_progress"
    assert os.path.isdir(os.path.join(profile_dir, "20241201T020000Z.partial"))
    # keep_last 1 keeps the newest (failed) backup; the newest verified one survives too.
    assert set(pruned["prune"]["kept"]) == {"20250110T030000Z", "20250102T020000Z"}


def test_lifeboat_prune_dry_run_then_real(cli, engine, make_config, real_backup, age_key, backup_root, pg):
    profile_dir = make_history(engine, make_config({}), real_backup, age_key)
    before = listing(profile_dir)
    config = {"connection": pg.connection(), "backup_root": backup_root,
              "encryption": {"mode": "age", "recipients": [age_key[1]]},
              "profiles": {"shop": {"db": "unused", "retention": POLICY}}}
    dry = cli(config, "prune", "--profile", "shop", "--dry-run", check=0)
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("prune of profile shop (keep_last=2 keep_daily=3): would delete 6 of 11 backups")
    rows = dict((line.split()[1], line.split()[0]) for line in lines[1:] if line.split()[0] in ("keep", "delete"))
    assert {i for i, action in rows.items() if action == "keep"} == EXPECTED_KEPT
    assert {i for i, action in rows.items() if action == "delete"} == set(HISTORY) - EXPECTED_KEPT
    assert any(line.split()[:2] == ["keep", "20250109T020000Z"] and line.endswith("keep_daily 2025-01-08") for line in lines)
    assert any(line.split()[:2] == ["remove", "20241201T020000Z.partial"] for line in lines)
    assert listing(profile_dir) == before

    real = cli(config, "--json", "prune", "--profile", "shop", check=0)
    result = json.loads(real.stdout)
    assert result["ok"] and set(result["kept"]) == EXPECTED_KEPT and len(result["deleted"]) == 6
    assert set(listing(profile_dir)) == EXPECTED_KEPT | {"20250111T020000Z.partial", "copied-by-hand"}

    again = cli(config, "prune", "--profile", "shop", check=0)
    assert "deleted 0 of 5 backups" in again.stdout.splitlines()[0]

    config["profiles"]["shop"]["retention"] = {}
    refused = cli(config, "prune", "--profile", "shop", check=2)
    assert "profile shop: retention: the policy is empty or all zero" in refused.stderr
