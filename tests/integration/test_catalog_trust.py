"""The catalog does not trust directory names: a manifest must lie where its own id and profile say.

Real backups through the lifeboat command, moved with ``mv`` and copied with ``cp -a`` as an operator (or an
accident) would.
"""

import json
import os
import subprocess

import pytest


@pytest.fixture
def config(pg, age_key, backup_root, shop_db):
    return {
        "connection": pg.connection(),
        "backup_root": backup_root,
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {"shop": {"db": shop_db}, "other": {"db": shop_db}},
    }


def _backup(cli, config, profile):
    return json.loads(cli(config, "--json", "backup", "--profile", profile, check=0).stdout)["id"]


def _listed(cli, config, profile):
    report = json.loads(cli(config, "--json", "list", "--profile", profile, check=0).stdout)
    return dict((b["id"], b) for b in report[profile]["backups"])


def test_swapped_directories_are_damaged_never_the_other_backup(cli, config, backup_root, pg, shop_db):
    older = _backup(cli, config, "shop")
    pg.psql("CREATE TABLE only_in_the_newer (x int)", db=shop_db)
    newer = _backup(cli, config, "shop")
    shop = os.path.join(backup_root, "shop")
    swap = os.path.join(shop, "swap")
    for source, target in ((older, "swap"), (newer, older), ("swap", newer)):
        subprocess.run(["mv", os.path.join(shop, source), os.path.join(shop, target)], check=True)
    assert not os.path.exists(swap)

    listed = _listed(cli, config, "shop")
    for name, inside in ((older, newer), (newer, older)):
        assert listed[name]["status"] == "damaged", listed
        assert "records backup_id %r" % inside in listed[name]["error"], listed[name]

    target = shop_db + "_swapped"
    refused = cli(config, "restore", "--profile", "shop", "--id", older, "--target", target, check=6)
    assert "backup %s of profile shop is damaged" % older in refused.stderr, refused.stderr
    assert "records backup_id %r" % newer in refused.stderr, refused.stderr
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % target).strip() == "0"
    pushed = cli(config, "push", "--profile", "shop", "--id", older, check=6)
    assert "records backup_id %r" % newer in pushed.stderr, pushed.stderr


def test_a_backup_copied_into_another_profile_is_damaged_there(cli, config, backup_root, shop_db):
    backup_id = _backup(cli, config, "shop")
    os.makedirs(os.path.join(backup_root, "other"), mode=0o700)
    subprocess.run(["cp", "-a", os.path.join(backup_root, "shop", backup_id), os.path.join(backup_root, "other", backup_id)], check=True)

    assert _listed(cli, config, "shop")[backup_id]["status"] == "complete"
    copied = _listed(cli, config, "other")[backup_id]
    assert copied["status"] == "damaged" and "records profile 'shop'" in copied["error"], copied
    health = json.loads(cli(config, "--json", "list", "--profile", "other", check=0).stdout)["other"]["health"]
    assert health["newest_id"] is None and health["count"] == 0, health
    refused = cli(config, "restore", "--profile", "other", "--id", backup_id, "--target", shop_db + "_copied", check=6)
    assert "records profile 'shop'" in refused.stderr, refused.stderr


def _damage_manifest(backup_dir):
    """Still JSON, no longer what was sealed: a bad disk block or a hand edit."""
    path = os.path.join(backup_dir, "manifest.json")
    with open(path) as handle:
        document = json.load(handle)
    document["database"] = "elsewhere"
    with open(path, "w") as handle:
        json.dump(document, handle)


def test_latest_means_the_newest_and_a_damaged_newest_is_never_skipped(cli, module, config, backup_root, shop_db, age_key):
    older = _backup(cli, config, "shop")
    newer = _backup(cli, config, "shop")
    _damage_manifest(os.path.join(backup_root, "shop", newer))

    failed = cli(config, "verify", "--profile", "shop", "--level", "checksum", check=6)
    assert "the newest backup of profile shop, %s, is damaged" % newer in failed.stderr, failed.stderr
    assert not os.path.exists(os.path.join(backup_root, "shop", older, "verification.json")), "the older one was verified instead"
    through_module = module("verify", dict(profile="shop", level="checksum", backup_root=backup_root))
    assert through_module.failed and "the newest backup of profile shop, %s, is damaged" % newer in through_module["msg"], through_module.result

    refused = cli(config, "restore", "--profile", "shop", "--target", shop_db + "_latest", "--identity", age_key[0], check=6)
    assert "is damaged" in refused.stderr and "--id" in refused.stderr, refused.stderr
    plan = json.loads(cli(config, "--json", "restore", "--profile", "shop", "--id", older, "--target", shop_db + "_older",
                          "--identity", age_key[0], "--dry-run", check=0).stdout)
    assert plan["backup_id"] == older

    listed = cli(config, "list", "--profile", "shop", check=0).stdout
    line = next(text for text in listed.splitlines() if newer in text)
    assert "damaged" in line and "checksum does not match its content" in line, listed


def _state(backup_root, backup_id):
    """What a verification records: verification.json, the metrics textfile, the audit log."""
    found = {}
    for name in (os.path.join("shop", backup_id, "verification.json"), os.path.join(".metrics", "lifeboat_shop.prom"),
                 os.path.join(".log", "audit.jsonl")):
        with open(os.path.join(backup_root, name), "rb") as handle:
            found[name] = handle.read()
    return found


def test_a_usage_error_records_nothing(cli, engine, config, backup_root, age_key):
    backup_id = _backup(cli, config, "shop")
    cli(config, "verify", "--profile", "shop", "--level", "restore", "--identity", age_key[0], check=0)
    before = _state(backup_root, backup_id)
    assert json.loads(before[os.path.join("shop", backup_id, "verification.json")])["level"] == "restore"
    health = json.loads(cli(config, "--json", "list", "--profile", "shop", check=0).stdout)["shop"]["health"]
    assert health["newest_verified_id"] == backup_id

    usage = cli(config, "verify", "--profile", "shop", "--level", "archive", check=6)  # no --identity
    validated = engine.config.validate_config(config)
    entry = engine.catalog.resolve(backup_root, "shop")
    with pytest.raises(engine.errors.VerifyError, match="level must be one of"):
        engine.verify.verify(validated, entry, "bogus")
    assert _state(backup_root, backup_id) == before, "a usage error recorded a verification result"
    assert "Cannot verify backup %s at level archive" % backup_id in usage.stderr
    assert "is encrypted: an age identity_file is needed to read it" in usage.stderr, usage.stderr
    again = json.loads(cli(config, "--json", "list", "--profile", "shop", check=0).stdout)["shop"]["health"]
    assert again["newest_verified_id"] == backup_id  # what prune keeps as the newest verified
