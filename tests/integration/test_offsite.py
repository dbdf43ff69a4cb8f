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
        engine.offsite.push(config, entry)
    message = str(failed.value)
    assert "part 3 of s3://%s/%s" % (bucket, key) in message and "cannot reach" in message, message
    monkeypatch.undo()

    s3.start()
    assert not [k for k in s3.keys(bucket) if k.endswith("manifest.json")], "a failed push left a remote manifest"
    retried = engine.offsite.push(config, entry)
    assert retried["changed"] and retried["uploaded"] == [item["name"], "manifest.json"]
    client = s3.client()
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the dead upload was not aborted"
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == item["bytes"] and head["ChecksumSHA256"].endswith("-3")
    assert not engine.offsite.push(config, entry)["changed"]

    pulled = engine.offsite.pull(config, "big", dest=str(tmp_path / "pulled"))
    assert pulled["id"] == entry.id
    engine.verify.verify(config, engine.catalog.resolve(path=pulled["path"]), "checksum")
    results = [line["result"] for line in _audit(config["backup_root"]) if line["action"] == "push"]
    assert results == ["failed", "ok", "ok"]
    assert _metrics(config["backup_root"], "big")["lifeboat_offsite_failures_total"] == 1
