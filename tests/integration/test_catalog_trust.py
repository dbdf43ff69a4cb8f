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
