"""Offsite copies against a real S3 endpoint: SeaweedFS on loopback, started once for this module.

Each test gets a bucket of its own. moto is not used: Object Lock, versioning,
multipart uploads and SHA-256 checksums are all SeaweedFS's own.
"""

import json
import os
import socket
import stat
import uuid

import pytest
from seaweed import SECRET_KEY, SeaweedFS

HOST = "db1"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3):
    return s3.bucket()


def _prefix(profile, backup_id, host=HOST):
    return "lifeboat/%s/%s/%s/" % (host, profile, backup_id)


def _audit(backup_root):
    with open(os.path.join(backup_root, ".log", "audit.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def _metrics(backup_root, profile):
    with open(os.path.join(backup_root, ".metrics", "lifeboat_%s.prom" % profile)) as handle:
        return dict((line.split("{")[0], float(line.split()[-1])) for line in handle if not line.startswith("#"))


def test_push_pull_and_restore_through_modules(module, pg, shop_db, age_key, backup_root, s3, bucket, tmp_path):
    conn = pg.connection()
    dumped = module("dump", dict(conn, db=shop_db, profile="shop", backup_root=backup_root, recipients=[age_key[1]]))
    assert not dumped.failed, dumped.result
    backup = dumped["backup"]
    host = socket.gethostname()
    prefix = _prefix("shop", backup["id"], host)
    args = dict(s3.target(bucket), profile="shop", backup_root=backup_root)

    planned = module("offsite", args, check=True)
    assert not planned.failed and planned.changed, planned.result
    assert planned["offsite"]["uploaded"] == [a["name"] for a in backup["artifacts"]] + ["manifest.json"]
    assert s3.keys(bucket) == []

    pushed = module("offsite", args)
    assert pushed.changed and not pushed.failed, pushed.result
    assert s3.keys(bucket) == sorted(prefix + name for name in pushed["offsite"]["uploaded"])
    assert pushed["offsite"]["location"] == "s3://%s/%s" % (bucket, prefix)

    again = module("offsite", args)
    assert not again.failed and not again.changed, again.result
    assert again["offsite"]["uploaded"] == [] and again["offsite"]["uploaded_bytes"] == 0
    for run in (planned, pushed, again):
        assert SECRET_KEY not in run.proc.stdout + run.proc.stderr

    # A host that has never seen the backup: pull onto an empty directory, then restore from it.
    recovery = str(tmp_path / "recovery")
    pull_args = dict(s3.target(bucket), state="pulled", profile="shop", host=host, dest=recovery, backup_root=recovery)
    planned_pull = module("offsite", pull_args, check=True)
    assert planned_pull.changed and not planned_pull.failed, planned_pull.result
    assert not os.path.exists(recovery)
    pulled = module("offsite", pull_args)
    assert pulled.changed and not pulled.failed, pulled.result
    path = pulled["offsite"]["path"]
    assert path == os.path.join(recovery, "shop", backup["id"])
    assert sorted(os.listdir(path)) == sorted([a["name"] for a in backup["artifacts"]] + ["manifest.json"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    for name in os.listdir(path):
        assert stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode) == 0o600
    assert not module("offsite", pull_args).changed

    target = shop_db + "_offsite"
    restored = module("restore", dict(conn, path=path, db=target, identity_file=age_key[0], backup_root=recovery))
    assert restored.changed and not restored.failed, restored.result
    for table in ("orders", "payments", "tickets", "users"):
        assert pg.psql("SELECT count(*) FROM %s" % table, db=target) == pg.psql("SELECT count(*) FROM %s" % table, db=shop_db)

    # verify reads the remote copy directly, through a temporary pull.
    remote = dict(s3.target(bucket), host=host)
    verified = module("verify", dict(conn, profile="shop", level="archive", identity_file=age_key[0], offsite=remote,
                                     backup_root=str(tmp_path / "empty")))
    assert not verified.failed and not verified.changed, verified.result
    assert verified["verification"]["path"] == "s3://%s/%s" % (bucket, prefix)
    actions = [(line["action"], line["result"]) for line in _audit(backup_root)]
    assert ("push", "ok") in actions
    assert _metrics(backup_root, "shop")["lifeboat_offsite_bytes"] == backup["bytes"]


def _random_database(pg, megabytes):
    """A database whose dump zstd cannot shrink: uuids as bytes, about ``megabytes`` MiB."""
    name = "big_%s" % uuid.uuid4().hex[:8]
    pg.psql('CREATE DATABASE "%s"' % name)
    rows = megabytes * 1024 * 1024 // 1600
    pg.psql("CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL); "
            "INSERT INTO blobs SELECT g, decode(string_agg(replace(gen_random_uuid()::text, '-', ''), ''), 'hex') "
            "FROM generate_series(1, %d) g, generate_series(1, 100) u GROUP BY g" % rows, db=name)
    return name


def test_server_killed_during_multipart_upload_then_retry(engine, pg, s3, make_config, monkeypatch, tmp_path):
    bucket = s3.bucket()
    database = _random_database(pg, 12)
    config = make_config({"big": {"db": database, "globals": False}}, encryption={"mode": "none"}, host=HOST,
                         offsite=s3.target(bucket, part_size_mb=5))
    entry = engine.catalog.resolve(path=engine.dump.backup(config, "big")["path"])
    item = entry.manifest["artifacts"][0]
    assert item["bytes"] > 10 * 1024 * 1024, "the artifact must need three parts of 5 MiB"
    key = _prefix("big", entry.id) + item["name"]

    original = engine.s3.Remote.send_part
    sent = []

    def crash_after_second_part(self, *args):
        etag = original(self, *args)
        sent.append(args[2])
        if len(sent) == 2:
            s3.kill()
        return etag

    monkeypatch.setattr(engine.s3.Remote, "send_part", crash_after_second_part)
    with pytest.raises(engine.errors.OffsiteError) as failed:
        engine.push.push(config, entry)
    message = str(failed.value)
    assert message.startswith("Failed to push backup %s of profile big to s3://%s/" % (entry.id, bucket)), message
    assert "cleaned up by the next push" in message
    assert "part 3 of s3://%s/%s" % (bucket, key) in message and "cannot reach" in message, message
    monkeypatch.undo()

    s3.start()
    assert not [k for k in s3.keys(bucket) if k.endswith("manifest.json")], "a failed push left a remote manifest"
    retried = engine.push.push(config, entry)
    assert retried["changed"] and retried["uploaded"] == [item["name"], "manifest.json"]
    client = s3.client()
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the dead upload was not aborted"
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == item["bytes"] and head["ChecksumSHA256"].endswith("-3")
    assert not engine.push.push(config, entry)["changed"]

    pulled = engine.offsite_pull.pull(config, "big", dest=str(tmp_path / "pulled"))
    assert pulled["id"] == entry.id
    engine.verify.verify(config, engine.catalog.resolve(path=pulled["path"]), "checksum")
    results = [line["result"] for line in _audit(config["backup_root"]) if line["action"] == "push"]
    assert results == ["failed", "ok", "ok"]
    assert _metrics(config["backup_root"], "big")["lifeboat_offsite_failures_total"] == 1


def _cli_config(pg, age_key, backup_root, s3, bucket, profiles, **offsite):
    return {
        "connection": pg.connection(),
        "backup_root": backup_root,
        "host": HOST,
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": profiles,
        "offsite": s3.target(bucket, **offsite),
    }


def test_damaged_remote_copy_fails_verify_naming_the_object_and_push_repairs_it(cli, pg, shop_db, age_key, backup_root, s3, bucket):
    config = _cli_config(pg, age_key, backup_root, s3, bucket, {"shop": {"db": shop_db}})
    cli(config, "backup", "--profile", "shop", check=0)
    pushed = json.loads(cli(config, "--json", "push", "--profile", "shop", check=0).stdout)["pushed"][0]
    database, globals_ = pushed["uploaded"][:2]
    key = "%s%s" % (_prefix("shop", pushed["id"]), database)
    client = s3.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01  # one flipped bit, same size: only the SHA-256 can tell
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    failed = cli(config, "verify", "--profile", "shop", "--remote", "--level", "checksum", check=6)
    assert "s3://%s/%s" % (bucket, key) in failed.stderr and "corrupted" in failed.stderr, failed.stderr
    assert not os.path.exists(os.path.join(backup_root, "shop", pushed["id"] + ".partial"))

    repaired = json.loads(cli(config, "--json", "push", "--profile", "shop", check=0).stdout)["pushed"][0]
    assert repaired["changed"] and repaired["uploaded"] == [database, "manifest.json"]
    ok = cli(config, "verify", "--profile", "shop", "--remote", "--level", "archive", "--identity", age_key[0], check=0)
    assert "offsite copy %s" % pushed["id"] in ok.stdout

    client.delete_object(Bucket=bucket, Key=_prefix("shop", pushed["id"]) + globals_)
    missing = cli(config, "verify", "--profile", "shop", "--remote", "--level", "checksum", check=6)
    assert "artifact %s is missing (s3://%s/%s%s)" % (globals_, bucket, _prefix("shop", pushed["id"]), globals_) in missing.stderr
    failures = [line for line in _audit(backup_root) if line["action"] == "verify" and line["result"] == "failed"]
    assert len(failures) == 2 and all(line["detail"] == "offsite" for line in failures)


def test_wrong_credentials_and_missing_bucket_are_one_clear_error(cli, pg, shop_db, age_key, backup_root, s3, bucket):
    config = _cli_config(pg, age_key, backup_root, s3, bucket, {"shop": {"db": shop_db}})
    cli(config, "backup", "--profile", "shop", check=0)
    wrong = "not-the-secret-%s" % uuid.uuid4().hex
    refused = cli(dict(config, offsite=s3.target(bucket, secret_key=wrong)), "push", "--profile", "shop", check=9)
    assert "credentials were rejected" in refused.stderr and "SignatureDoesNotMatch" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    unknown = cli(dict(config, offsite=s3.target(bucket, access_key="nobody")), "pull", "--profile", "shop", check=9)
    assert "credentials were rejected" in unknown.stderr, unknown.stderr
    absent = cli(dict(config, offsite=s3.target("no-such-bucket")), "push", "--profile", "shop", check=9)
    assert "bucket no-such-bucket does not exist at %s" % s3.endpoint in absent.stderr, absent.stderr
    assert s3.keys(bucket) == []
    with open(os.path.join(backup_root, ".log", "audit.jsonl")) as handle:
        audit = handle.read()
    assert wrong not in audit and SECRET_KEY not in audit
    assert _metrics(backup_root, "shop")["lifeboat_offsite_failures_total"] == 2


def _backups(engine, config, profile, count):
    return [engine.catalog.resolve(path=engine.dump.backup(config, profile)["path"]) for _n in range(count)]


def test_remote_prune_plan_in_check_mode_then_prune_and_object_lock(engine, cli, pg, shop_db, age_key, backup_root, s3, bucket):
    s3.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    profiles = {"shop": {"db": shop_db, "tables": ["users"], "globals": False, "retention": {"keep_last": 5},
                         "offsite": {"retention": {"keep_last": 2}}}}
    config = _cli_config(pg, age_key, backup_root, s3, bucket, profiles)
    entries = _backups(engine, engine.config.validate_config(config), "shop", 3)
    pushed = json.loads(cli(config, "--json", "push", "--profile", "shop", "--all", check=0).stdout)["pushed"]
    assert [p["id"] for p in pushed] == [e.id for e in entries]
    before = s3.keys(bucket)

    plan = cli(config, "remote-prune", "--profile", "shop", "--dry-run", check=0)
    assert "would delete 1 of 3 backups" in plan.stdout and "keep_last=2" in plan.stdout, plan.stdout
    assert s3.keys(bucket) == before
    listed = json.loads(cli(config, "--json", "remote-list", "--profile", "shop", check=0).stdout)
    assert [b["id"] for b in listed["backups"]] == [e.id for e in entries]

    cli(config, "remote-prune", "--profile", "shop", check=0)
    oldest = _prefix("shop", entries[0].id)
    assert not [k for k in s3.keys(bucket) if k.startswith(oldest)]
    versions = s3.client().list_object_versions(Bucket=bucket, Prefix=oldest)
    assert not versions.get("Versions") and not versions.get("DeleteMarkers"), "old versions left behind"
    assert len(os.listdir(os.path.join(backup_root, "shop"))) >= 3, "remote prune touched local backups"
    line = [a for a in _audit(backup_root) if a["action"] == "remote_prune"][-1]
    assert line["deleted"] == [entries[0].id] and line["kept"] == 2

    # Object Lock: every object keeps its retention; prune reports the locked backups once each and exits 0.
    locked_bucket = s3.bucket(object_lock=True)
    locked = dict(config, offsite=s3.target(locked_bucket, object_lock_mode="GOVERNANCE", object_lock_days=1))
    cli(locked, "push", "--profile", "shop", "--all", check=0)
    key = _prefix("shop", entries[0].id) + "manifest.json"
    head = s3.client().head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"].timestamp() > entries[0].time + 80000
    pruned = cli(locked, "--json", "remote-prune", "--profile", "shop", check=0)
    result = json.loads(pruned.stdout)
    assert result["deleted"] == [] and [s["id"] for s in result["skipped"]] == [entries[0].id]
    assert "under Object Lock until" in result["skipped"][0]["reason"]
    assert len([k for k in s3.keys(locked_bucket) if k.endswith("manifest.json")]) == 3


def test_scheduled_run_backs_up_verifies_pushes_and_prunes_both_sides(cli, pg, shop_db, age_key, backup_root, s3, bucket, tmp_path):
    profiles = {"shop": {"db": shop_db, "retention": {"keep_last": 1}}}
    config = _cli_config(pg, age_key, backup_root, s3, bucket, profiles)
    first = json.loads(cli(config, "--json", "run", "--profile", "shop", check=0).stdout)
    second = json.loads(cli(config, "--json", "run", "--profile", "shop", check=0).stdout)
    assert [p["id"] for p in second["offsite"]] == [second["backup"]["id"]]
    assert set(second["steps"]) == {"backup", "verify", "push", "prune", "prune_remote"}
    assert second["prune"]["deleted"] == [first["backup"]["id"]]
    assert second["prune_remote"]["deleted"] == [first["backup"]["id"]]
    assert [n for n in os.listdir(os.path.join(backup_root, "shop")) if not n.startswith(".")] == [second["backup"]["id"]]
    remote_ids = sorted({k.split("/")[3] for k in s3.keys(bucket)})
    assert remote_ids == [second["backup"]["id"]]
    audit = _audit(backup_root)
    last_run = [a["action"] for a in audit[[a["action"] for a in audit].index("run") + 1:]]
    assert last_run == ["backup", "verify", "push", "prune", "remote_prune", "run"]
    metrics = _metrics(backup_root, "shop")
    assert metrics["lifeboat_offsite_failures_total"] == 0
    assert metrics["lifeboat_offsite_last_success_timestamp_seconds"] >= second["started"]

    # A recovery host that never saw the backup and has no such profile restores from the bucket alone
    # (dry run first: the plan needs only the manifest).
    recovery = dict(config, host="dr1", profiles={}, backup_root=str(tmp_path / "dr"))
    target = shop_db + "_remote"
    remote = ("restore", "--profile", "shop", "--remote", "--host", HOST, "--target", target, "--identity", age_key[0])
    plan = cli(recovery, *remote, "--dry-run", check=0)
    assert "would restore backup %s" % second["backup"]["id"] in plan.stdout
    cli(recovery, *remote, check=0)
    assert pg.psql("SELECT count(*) FROM payments", db=target) == pg.psql("SELECT count(*) FROM payments", db=shop_db)
    assert not os.path.exists(os.path.join(recovery["backup_root"], "shop")), "the temporary pull was left behind"
