"""Holds (``lifeboat hold``/``release``, the hold module): a held backup survives local and remote prune.

Real cluster, real backups; offsite against SeaweedFS on loopback with and without Object Lock, so the legal
hold is the store's own (a held object's version cannot be deleted), never a mock.
"""

import json
import os
import stat

import pytest
from seaweed import SeaweedFS

HOST = "db1"
REASON = "legal: transactions of 2026, keep 7 years (ticket 4711)"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


def _config(pg, age_key, backup_root, shop_db, **top):
    config = {"connection": pg.connection(), "backup_root": backup_root, "host": HOST,
              "encryption": {"mode": "age", "recipients": [age_key[1]]},
              "profiles": {"shop": {"db": shop_db, "tables": ["users"], "globals": False, "retention": {"keep_last": 1}}}}
    config.update(top)
    return config


def _backups(cli, config, count):
    return [json.loads(cli(config, "--json", "backup", "--profile", "shop", check=0).stdout)["id"] for _n in range(count)]


def _audit(backup_root, *actions):
    with open(os.path.join(backup_root, ".log", "audit.jsonl")) as handle:
        return [line for line in map(json.loads, handle) if line["action"] in actions]


def _plan(result):
    return dict((b["id"], b["rules"]) for b in result["backups"])


def test_hold_keeps_a_backup_through_prune_until_released(cli, pg, shop_db, age_key, backup_root):
    config = _config(pg, age_key, backup_root, shop_db)
    oldest, middle, newest = _backups(cli, config, 3)
    hold_file = os.path.join(backup_root, "shop", oldest, "hold.json")

    preview = cli(config, "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, "--dry-run", check=0)
    assert "would be held: %s" % REASON in preview.stdout and not os.path.exists(hold_file)
    held = cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0)
    assert json.loads(held.stdout)["changed"] is True
    assert stat.S_IMODE(os.stat(hold_file).st_mode) == 0o600
    with open(hold_file) as handle:
        assert json.load(handle)["reason"] == REASON
    again = cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", "  %s " % REASON, check=0)
    assert json.loads(again.stdout)["changed"] is False

    listed = cli(config, "list", "--profile", "shop", check=0).stdout
    assert [line for line in listed.splitlines() if oldest in line and "held: %s" % REASON in line], listed
    report = json.loads(cli(config, "--json", "list", "--profile", "shop", check=0).stdout)["shop"]
    assert report["health"]["held"] == {oldest: REASON}
    assert [b["hold"] and b["hold"]["reason"] for b in report["backups"]] == [REASON, None, None]

    plan = json.loads(cli(config, "--json", "prune", "--profile", "shop", "--dry-run", check=0).stdout)
    assert plan["deleted"] == [middle] and _plan(plan)[oldest] == ["hold: %s" % REASON]
    text = cli(config, "prune", "--profile", "shop", check=0).stdout
    assert "hold: %s" % REASON in text
    assert sorted(os.listdir(os.path.join(backup_root, "shop"))) == sorted([".credential.lock", ".lock", oldest, newest])

    assert cli(config, "release", "--profile", "shop", "--id", oldest, "--dry-run", check=0).stdout.startswith(
        "backup %s of profile shop would be released" % oldest)
    assert os.path.exists(hold_file)
    cli(config, "release", "--profile", "shop", "--id", oldest, check=0)
    assert not os.path.exists(hold_file)
    assert "is not held" in cli(config, "release", "--profile", "shop", "--id", oldest, check=0).stdout
    pruned = json.loads(cli(config, "--json", "prune", "--profile", "shop", check=0).stdout)
    assert pruned["deleted"] == [oldest]

    lines = _audit(backup_root, "hold", "release")
    assert [(a["action"], a["result"], a["backup_id"]) for a in lines] == [
        ("hold", "ok", oldest), ("hold", "ok", oldest), ("release", "ok", oldest), ("release", "ok", oldest)]
    assert REASON in lines[0]["detail"]

    empty = cli(config, "hold", "--profile", "shop", "--id", newest, "--reason", "  ", check=2)
    assert "say why the backup is held" in empty.stderr
    missing = cli(config, "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=None)
    assert missing.returncode != 0 and "backup %s of profile shop not found" % oldest in missing.stderr


def test_hold_module_check_mode_run_rerun_release_and_catalog_info(module, cli, pg, shop_db, age_key, backup_root):
    config = _config(pg, age_key, backup_root, shop_db)
    backup_id = _backups(cli, config, 1)[0]
    args = dict(backup_root=backup_root, profile="shop", backup_id=backup_id, reason=REASON)
    hold_file = os.path.join(backup_root, "shop", backup_id, "hold.json")

    checked = module("hold", args, check=True)
    assert checked.changed and checked["hold"]["held"] and not os.path.exists(hold_file)
    done = module("hold", args)
    assert done.changed and done["hold"]["hold"]["reason"] == REASON and os.path.exists(hold_file)
    assert not module("hold", args).changed
    assert module("hold", dict(args, reason="changed my mind")).changed
    info = module("catalog_info", dict(backup_root=backup_root, profile="shop"))
    assert info["profiles"]["shop"]["backups"][0]["hold"]["reason"] == "changed my mind"
    assert info["profiles"]["shop"]["health"]["held"] == {backup_id: "changed my mind"}

    release = dict(backup_root=backup_root, profile="shop", backup_id=backup_id, state="absent")
    assert module("hold", release, check=True).changed and os.path.exists(hold_file)
    assert module("hold", release).changed and not os.path.exists(hold_file)
    assert not module("hold", release).changed
    refused = module("hold", dict(backup_root=backup_root, profile="shop", backup_id=backup_id))
    assert refused.failed and "reason" in refused["msg"]


def test_offsite_hold_is_an_object_lock_legal_hold_and_remote_prune_skips_it(cli, pg, shop_db, age_key, backup_root, s3):
    bucket = s3.bucket(object_lock=True)
    config = _config(pg, age_key, backup_root, shop_db, offsite=s3.target(bucket, retention={"keep_last": 1}))
    oldest, newest = _backups(cli, config, 2)
    cli(config, "push", "--profile", "shop", "--all", check=0)
    prefix = "lifeboat/%s/shop/%s/" % (HOST, oldest)
    client = s3.client()
    objects = list(s3.keys(bucket, prefix))

    preview = json.loads(cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, "--dry-run",
                             check=0).stdout)
    assert preview["changed"] and sorted(preview["offsite"]["legal_hold"]) == sorted(k[len(prefix):] for k in objects)
    assert s3.keys(bucket, prefix) == objects and not os.path.exists(os.path.join(backup_root, "shop", oldest, "hold.json"))
    assert all(client.head_object(Bucket=bucket, Key=key).get("ObjectLockLegalHoldStatus") != "ON" for key in objects)

    held = json.loads(cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0).stdout)
    assert held["offsite"]["object_lock"] is True and sorted(held["offsite"]["legal_hold"]) == sorted(k[len(prefix):] for k in objects)
    for key in objects:
        assert client.head_object(Bucket=bucket, Key=key)["ObjectLockLegalHoldStatus"] == "ON", key
    assert json.loads(client.get_object(Bucket=bucket, Key=prefix + "hold.json")["Body"].read())["reason"] == REASON
    manifest = client.head_object(Bucket=bucket, Key=prefix + "manifest.json")
    refused = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": prefix + "manifest.json", "VersionId": manifest["VersionId"]}]})
    assert refused.get("Errors"), "the store let a held object's version be deleted"
    assert json.loads(cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0).stdout)["changed"] is False

    pruned = json.loads(cli(config, "--json", "remote-prune", "--profile", "shop", check=0).stdout)
    assert pruned["deleted"] == [] and _plan(pruned)[oldest] == ["hold: %s" % REASON]
    assert prefix + "manifest.json" in s3.keys(bucket, prefix)

    released = json.loads(cli(config, "--json", "release", "--profile", "shop", "--id", oldest, check=0).stdout)
    assert released["changed"] and sorted(released["offsite"]["legal_hold"]) == sorted(k[len(prefix):] for k in objects)
    for key in objects:
        assert client.head_object(Bucket=bucket, Key=key).get("ObjectLockLegalHoldStatus") in (None, "OFF"), key
    assert prefix + "hold.json" not in s3.keys(bucket, prefix)
    pruned = json.loads(cli(config, "--json", "remote-prune", "--profile", "shop", check=0).stdout)
    assert pruned["deleted"] == [oldest] and not s3.keys(bucket, prefix)
    assert [a["target"] for a in _audit(backup_root, "hold", "release")][-1] == "s3://%s/%s" % (bucket, prefix)


def test_a_backup_held_before_its_push_is_held_in_a_bucket_without_object_lock(cli, module, pg, shop_db, age_key, backup_root, s3):
    bucket = s3.bucket()
    config = _config(pg, age_key, backup_root, shop_db, offsite=s3.target(bucket, retention={"keep_last": 1}))
    oldest, newest = _backups(cli, config, 2)
    prefix = "lifeboat/%s/shop/%s/" % (HOST, oldest)

    held = cli(config, "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0)
    assert "not there yet; the push will hold it" in held.stdout and s3.keys(bucket) == []
    cli(config, "push", "--profile", "shop", "--all", check=0)
    assert prefix + "hold.json" in s3.keys(bucket, prefix)
    again = json.loads(cli(config, "--json", "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0).stdout)
    assert again["changed"] is False and again["offsite"]["object_lock"] is False

    pruned = json.loads(cli(config, "--json", "remote-prune", "--profile", "shop", check=0).stdout)
    assert pruned["deleted"] == [] and _plan(pruned)[oldest] == ["hold: %s" % REASON]
    assert prefix + "manifest.json" in s3.keys(bucket, prefix)
    release = dict(backup_root=backup_root, profile="shop", backup_id=oldest, state="absent", offsite=s3.target(bucket))
    checked = module("hold", release, check=True)
    assert checked.changed and prefix + "hold.json" in s3.keys(bucket, prefix)
    released = module("hold", release)
    assert released.changed and released["hold"]["offsite"]["object_lock"] is False
    assert prefix + "hold.json" not in s3.keys(bucket, prefix) and not module("hold", release).changed
    assert s3.target(bucket)["secret_key"] not in released.proc.stdout
    assert json.loads(cli(config, "--json", "remote-prune", "--profile", "shop", check=0).stdout)["deleted"] == [oldest]


def test_a_hold_placed_while_prune_runs_spares_the_backup(engine, cli, pg, shop_db, age_key, backup_root, monkeypatch):
    """Prune takes no lock; a hold written between its plan and its deletions must still win."""
    config = _config(pg, age_key, backup_root, shop_db)
    oldest, newest = _backups(cli, config, 2)
    plan_for = engine.retention.plan_for

    def plan_then_hold(*args, **kwargs):  # the operator's ``lifeboat hold`` lands right after the plan
        planned = plan_for(*args, **kwargs)
        cli(config, "hold", "--profile", "shop", "--id", oldest, "--reason", REASON, check=0)
        return planned

    monkeypatch.setattr(engine.prune._retention, "plan_for", plan_then_hold)
    result = engine.prune.prune(engine.config.validate_config(config), "shop", {"keep_last": 1})
    assert result["deleted"] == [] and sorted(result["kept"]) == sorted([oldest, newest])
    assert os.path.isdir(os.path.join(backup_root, "shop", oldest))
    assert _plan(result)[oldest] == ["held while prune ran: %s" % REASON]
    assert _audit(backup_root, "prune")[-1]["kept"] == 2
