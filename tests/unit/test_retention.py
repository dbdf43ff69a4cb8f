"""Retention plans on generated histories, and the guarantees prune gives on a real directory tree.

The plan is a pure function (_retention); the guarantees that involve the file system (locks,
.partial leftovers, damaged directories) are checked against _prune with manifests written by the
engine itself into a temporary backup root: no PostgreSQL needed.
"""

import datetime
import os
import random

import pytest

UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def retention(engine):
    return engine.retention


def at(*fields):
    return datetime.datetime(*fields, tzinfo=UTC).timestamp()


def ident(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")


def history(retention, times, states=None):
    states = states or {}
    return [retention.Backup(ident(t), t, states.get(ident(t), "unverified")) for t in times]


def kept(decisions):
    return {d.backup.id for d in decisions if d.keep}


def rules_of(decisions):
    return {d.backup.id: d.rules for d in decisions}


def test_keep_last_orders_by_manifest_time_not_by_id(retention):
    # Ids deliberately sort the other way round from the snapshot times.
    backups = [retention.Backup("c", at(2025, 1, 1)), retention.Backup("b", at(2025, 1, 2)), retention.Backup("a", at(2025, 1, 3))]
    decisions = retention.plan(backups, {"keep_last": 2})
    assert [d.backup.id for d in decisions] == ["a", "b", "c"]  # newest first
    assert kept(decisions) == {"a", "b"}
    assert [d.as_dict()["action"] for d in decisions] == ["keep", "keep", "delete"]


def test_clock_going_backwards(retention):
    # The host clock was set back: the backup named 03:00 was taken (by its snapshot) at 00:30,
    # older than the one named 02:00. Ordering and buckets follow the manifest time.
    backups = [
        retention.Backup("20250101T010000Z", at(2025, 1, 1, 1)),
        retention.Backup("20250101T020000Z", at(2025, 1, 1, 2)),
        retention.Backup("20250101T030000Z", at(2025, 1, 1, 0, 30)),
    ]
    decisions = retention.plan(backups, {"keep_last": 1})
    assert kept(decisions) == {"20250101T020000Z"}
    decisions = retention.plan(backups, {"keep_hourly": 2})
    assert rules_of(decisions) == {
        "20250101T020000Z": ["keep_hourly 2025-01-01T02"],
        "20250101T010000Z": ["keep_hourly 2025-01-01T01"],
        "20250101T030000Z": [],
    }
    # keep_within is measured from the newest backup (02:00), not from the id that sorts last.
    decisions = retention.plan(backups, {"keep_within": "1h"})
    assert kept(decisions) == {"20250101T020000Z", "20250101T010000Z"}


def test_gaps_count_only_periods_that_have_backups(retention):
    days = [at(2025, 3, d, 2) for d in (1, 2, 3, 10, 11, 20)]  # gaps of a week and more
    decisions = retention.plan(history(retention, days), {"keep_daily": 4})
    assert kept(decisions) == {ident(at(2025, 3, d, 2)) for d in (20, 11, 10, 3)}
    decisions = retention.plan(history(retention, days), {"keep_weekly": 2})
    # ISO weeks: 1-2 Mar = 2025-W09, 3 Mar = W10, 10-11 Mar = W11, 20 Mar = W12.
    assert rules_of(decisions)[ident(at(2025, 3, 11, 2))] == ["keep_weekly 2025-W11"]
    assert kept(decisions) == {ident(at(2025, 3, 20, 2)), ident(at(2025, 3, 11, 2))}


def test_daily_bucket_keeps_newest_backup_that_did_not_fail(retention):
    times = [at(2025, 5, 1, h) for h in (1, 5, 9, 23)] + [at(2025, 5, 2, h) for h in (3, 4)]
    states = {ident(at(2025, 5, 1, 23)): "failed", ident(at(2025, 5, 2, 3)): "failed", ident(at(2025, 5, 2, 4)): "failed"}
    decisions = retention.plan(history(retention, times, states), {"keep_daily": 2})
    # 1 May: the 23:00 backup failed verification, so the 09:00 one stands for the day.
    # 2 May: only failed backups; the day still counts and keeps its newest.
    assert kept(decisions) == {ident(at(2025, 5, 1, 9)), ident(at(2025, 5, 2, 4))}


def test_failed_backups_kept_only_by_a_rule_and_newest_verified_always(retention):
    times = [at(2025, 6, 1, h) for h in range(6)]
    states = dict((ident(t), "failed") for t in times[3:])
    states[ident(times[1])] = "ok"
    decisions = retention.plan(history(retention, times, states), {"keep_last": 2})
    by_id = rules_of(decisions)
    assert by_id[ident(times[5])] == ["keep_last"] and by_id[ident(times[4])] == ["keep_last"]  # failed, kept by keep_last
    assert by_id[ident(times[3])] == []  # failed and no rule: deleted
    assert by_id[ident(times[1])] == ["newest verified"]  # no rule keeps it, the guarantee does
    assert by_id[ident(times[2])] == [] and by_id[ident(times[0])] == []


def test_keep_within_is_relative_to_the_newest_backup(retention):
    # Backups stopped 400 days ago: a wall-clock window would delete all of them.
    times = [at(2024, 1, 1) + i * 86400 for i in range(10)]
    decisions = retention.plan(history(retention, times), {"keep_within": "36h"})
    assert kept(decisions) == {ident(times[9]), ident(times[8])}
    assert rules_of(decisions)[ident(times[9])] == ["keep_within 36h"]


def last_of_day(month, day):
    return ident(at(2025, month, day, 23) + 17)


def test_year_of_hourly_backups(retention):
    start = at(2025, 1, 1)
    times = [start + h * 3600 + 17 for h in range(365 * 24)]  # 2025 is not a leap year
    policy = {"keep_hourly": 24, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 3}
    decisions = retention.plan(history(retention, times), policy)
    counts = {}
    for decision in decisions:
        for rule in decision.rules:
            counts[rule.split()[0]] = counts.get(rule.split()[0], 0) + 1
    assert counts == {"keep_hourly": 24, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 1}
    by_id = rules_of(decisions)
    # The last 24 hours are 31 Dec 00:00-23:00; days keep their 23:00 backup.
    assert all(by_id[ident(at(2025, 12, 31, h) + 17)] for h in range(24))
    assert [d for d in range(1, 32) if any(r.startswith("keep_daily") for r in by_id[last_of_day(12, d)])] == list(range(25, 32))
    # ISO weeks: 2026-W01 starts Mon 29 Dec; W52, W51, W50 end on Sundays 28, 21, 14 Dec.
    assert by_id[last_of_day(12, 28)] == ["keep_daily 2025-12-28", "keep_weekly 2025-W52"]
    assert by_id[last_of_day(12, 21)] == ["keep_weekly 2025-W51"] and by_id[last_of_day(12, 14)] == ["keep_weekly 2025-W50"]
    month_ends = [last_of_day(m, (datetime.date(2025, m % 12 + 1, 1) - datetime.timedelta(days=1)).day if m < 12 else 31)
                  for m in range(1, 13)]
    assert all(any(r.startswith("keep_monthly") for r in by_id[i]) for i in month_ends)
    assert by_id[ident(at(2025, 12, 31, 23) + 17)][-1] == "keep_yearly 2025"
    # 24 hourly + 6 more days + 2 more weeks (21, 14 Dec) + 11 more month ends = 43.
    assert len(kept(decisions)) == 43


@pytest.mark.parametrize("policy", [None, {}, {"keep_last": 0}, {"keep_daily": 0, "keep_within": "0d"},
                                    {"keep_last": None, "keep_within": None}])
def test_empty_or_all_zero_policy_is_an_error(retention, engine, policy):
    backups = history(retention, [at(2025, 1, 1)])
    with pytest.raises(engine.errors.ConfigError, match="empty or all zero"):
        retention.plan(backups, policy)


@pytest.mark.parametrize("policy, message", [
    ({"keep_last": -1}, "retention.keep_last: must be at least 0"),
    ({"keep_within": "a week"}, "retention.keep_within: must be a duration"),
    ({"keep_forever": 1}, "unknown key 'keep_forever'"),
    ({"keep_daily": "seven"}, "retention.keep_daily: must be an integer"),
])
def test_bad_policy_values_are_named(retention, engine, policy, message):
    with pytest.raises(engine.errors.ConfigError, match=message):
        retention.normalize(policy)


def test_empty_history_is_an_empty_plan(retention):
    assert retention.plan([], {"keep_last": 3}) == []


def random_history(rng, retention):
    """Irregular times (gaps, bursts, a clock set back now and then) with mixed verification states."""
    count = rng.randint(1, 60)
    moment = at(2024, rng.randint(1, 12), rng.randint(1, 28))
    backups = []
    for i in range(count):
        step = rng.choice([60, 3600, 3600, 86400, 86400 * 9, 86400 * 40, -7200])  # -7200: clock went back
        moment += step
        state = rng.choice(["ok", "ok", "failed", "unverified"])
        backups.append(retention.Backup("%s-%02d" % (ident(moment), i), moment, state))
    return backups


def random_policy(rng):
    policy = {}
    for rule in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
        if rng.random() < 0.4:
            policy[rule] = rng.randint(0, 6)
    if rng.random() < 0.3:
        policy["keep_within"] = rng.choice(["0h", "2h", "36h", "7d", "1y"])
    if not any(policy.get(r) for r in policy if r != "keep_within") and policy.get("keep_within", "0h") == "0h":
        policy["keep_last"] = 1
    return policy


def test_guarantees_on_many_random_histories(retention):
    for seed in range(3000):
        rng = random.Random(seed)  # one seed per history: a failure names a reproducible case
        backups = random_history(rng, retention)
        policy = random_policy(rng)
        decisions = retention.plan(backups, policy)
        assert len(decisions) == len(backups)
        verified = [b for b in backups if b.verification == "ok"]
        if verified:
            newest_verified = max(verified, key=lambda b: (b.time, b.id))
            assert newest_verified.id in kept(decisions), (backups, policy)
        assert kept(decisions), (backups, policy)  # a non-empty policy never deletes every backup
        if policy.get("keep_last") or policy.get("keep_within", "0h") != "0h":
            assert decisions[0].keep  # the newest backup is always within the last N and the window
        # Pruning is idempotent: re-planning what is left deletes nothing more.
        left = [d.backup for d in decisions if d.keep]
        assert all(d.keep for d in retention.plan(left, policy)), (backups, policy)


# --- guarantees of _prune on a directory tree (manifests written by the engine, no artifacts needed) ---


def write_backup(engine, directory, backup_id, epoch, verification):
    path = os.path.join(directory, backup_id)
    os.makedirs(path, 0o700)
    engine.manifest.write(path, {"backup_id": backup_id, "profile": "p", "database": "db", "consistent_at": engine.manifest.iso(epoch),
                                 "artifacts": [{"name": "db.dump.zst", "kind": "database", "bytes": 0, "sha256": "", "encryption": "none"}]})
    if verification != "unverified":
        engine.catalog.record_verification(path, {"level": "archive", "ok": verification == "ok", "passed": {}})
    return path


def test_prune_never_deletes_the_newest_verified_nor_anything_being_written(engine, tmp_path):
    rng = random.Random(7)
    for round_no in range(40):
        root = str(tmp_path / ("r%d" % round_no))
        directory = os.path.join(root, "p")
        os.makedirs(directory, 0o700)
        backups = random_history(rng, engine.retention)
        for backup in backups:
            write_backup(engine, directory, backup.id, backup.time, backup.verification)
        # A dead run's old leftover, a fresh leftover, a directory without manifest and a damaged one.
        old_partial = os.path.join(directory, "20200101T000000Z.partial")
        os.makedirs(old_partial)
        open(os.path.join(old_partial, "db.dump.zst"), "w").close()
        for name in (old_partial, os.path.join(old_partial, "db.dump.zst")):
            os.utime(name, (0, 0))
        os.makedirs(os.path.join(directory, "20990101T000000Z.partial"))
        os.makedirs(os.path.join(directory, "manual-copy"))
        damaged = write_backup(engine, directory, "19990101T000000Z", at(1999, 1, 1), "ok")
        with open(os.path.join(damaged, "manifest.json"), "r+") as handle:
            handle.seek(20)
            handle.write("X")
        locked = rng.random() < 0.5
        config = {"backup_root": root, "log_dir": os.path.join(root, ".log"), "metrics_dir": os.path.join(root, ".metrics")}
        policy = random_policy(rng)
        lock = engine.storage.ProfileLock(directory, "p")
        if locked:
            lock.__enter__()
        try:
            result = engine.prune.prune(config, "p", policy, via="test")
        finally:
            if locked:
                lock.__exit__()
        names = set(os.listdir(directory))
        verified = [b for b in backups if b.verification == "ok"]
        if verified:
            assert max(verified, key=lambda b: (b.time, b.id)).id in names
        assert {"20990101T000000Z.partial", "manual-copy", "19990101T000000Z"} <= names
        assert ("20200101T000000Z.partial" in names) == locked  # removed only when no run holds the lock
        assert set(result["deleted"]) == {b.id for b in backups} - names
        assert not any(n.startswith(".deleting-") for n in names)
        again = engine.prune.prune(config, "p", policy, via="test", check_mode=True)
        assert again["deleted"] == [] and again["leftovers_removed"] == (["20200101T000000Z.partial"] if locked else [])


def test_prune_refuses_empty_policy_before_touching_anything(engine, tmp_path):
    directory = tmp_path / "p"
    directory.mkdir()
    write_backup(engine, str(directory), "20250101T000000Z", at(2025, 1, 1), "failed")
    config = {"backup_root": str(tmp_path), "log_dir": str(tmp_path / ".log"), "metrics_dir": str(tmp_path / ".metrics")}
    with pytest.raises(engine.errors.ConfigError):
        engine.prune.prune(config, "p", {"keep_last": 0, "keep_daily": 0})
    assert os.listdir(str(directory)) == ["20250101T000000Z"]
    assert not (tmp_path / ".log").exists()


def test_a_held_backup_is_kept_with_its_reason_whatever_the_policy(retention):
    times = [at(2020, 1, d) for d in range(1, 11)]
    backups = history(retention, times)
    backups[0].hold = "legal: 7 years, ticket 4711"
    decisions = retention.plan(backups, {"keep_last": 2})
    assert kept(decisions) == {ident(times[0]), ident(times[-1]), ident(times[-2])}
    assert rules_of(decisions)[ident(times[0])] == ["hold: legal: 7 years, ticket 4711"]
    fields, doomed = retention.plan_for(backups, {"keep_last": 2}, lambda b: b.verification,
                                        lambda b: b.hold)
    assert ident(times[0]) in fields["kept"] and ident(times[0]) not in [b.id for b in doomed]
    assert len(doomed) == 7
