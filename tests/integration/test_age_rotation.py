"""Rotating the age recipient (docs/runbooks.md): backups from before, during and after the overlap restore with the
identity `lifeboat identities` names, and it says when the retired identity may go."""

import json
import os
import subprocess

import pytest


@pytest.fixture
def keys(tmp_path):
    made = {}
    for name in ("old", "new"):
        path = str(tmp_path / ("%s.txt" % name))
        subprocess.run(["age-keygen", "-o", path], check=True, capture_output=True)
        made[name] = (path, subprocess.run(["age-keygen", "-y", path], check=True, capture_output=True, text=True).stdout.strip())
    return made


def test_backups_across_a_recipient_rotation_restore_with_the_identity_the_catalog_names(pg, shop_db, keys, cli, tmp_path):
    root = str(tmp_path / "backups")

    def config(*names):
        return {"connection": pg.connection(), "backup_root": root, "profiles": {"shop": {"db": shop_db}},
                "encryption": {"mode": "age", "recipients": [keys[n][1] for n in names]}}

    def lifeboat(names, *args, check=0):
        proc = cli(config(*names), "--json", *args, check=check)
        return json.loads(proc.stdout.splitlines()[-1]) if proc.stdout.strip() else None

    ids = {}
    for phase, names in (("before", ["old"]), ("overlap", ["old", "new"]), ("after", ["new"])):
        ids[phase] = lifeboat(names, "backup", "--profile", "shop")["id"]

    listed = {b["id"]: b["recipients"] for b in lifeboat(["new"], "list", "--profile", "shop")["shop"]["backups"]}
    assert listed == {ids["before"]: [keys["old"][1]], ids["overlap"]: sorted([keys["old"][1], keys["new"][1]]),
                      ids["after"]: [keys["new"][1]]}

    report = dict((i["recipient"], i) for i in lifeboat(["new"], "identities")["recipients"])
    new, old = report[keys["new"][1]], report[keys["old"][1]]
    assert new["current"] and sorted(new["opens"]) == sorted("shop/" + ids[p] for p in ("overlap", "after"))
    assert not old["current"] and old["needed_by"] == ["shop/" + ids["before"]]
    text = cli(config("new"), "identities", check=0).stdout
    assert "retired, the only way into 1 backups (newest %s): keep its identity" % ids["before"] in text

    # Each restores with the identity named; the one made before the rotation does not open with the new identity.
    for phase, key in (("before", "old"), ("overlap", "new"), ("overlap", "old"), ("after", "new")):
        target = "%s_%s_%s" % (shop_db, phase, key)
        lifeboat(["new"], "restore", "--profile", "shop", "--id", ids[phase], "--target", target, "--no-owner",
                 "--identity", keys[key][0])
        assert pg.psql("SELECT count(*) FROM payments", db=target) == pg.psql("SELECT count(*) FROM payments", db=shop_db)
        pg.psql('DROP DATABASE "%s"' % target)
    refused = cli(config("new"), "restore", "--profile", "shop", "--id", ids["before"], "--target", shop_db + "_x",
                  "--no-owner", "--identity", keys["new"][0])
    assert refused.returncode != 0 and "lifeboat:" in refused.stderr
    assert shop_db + "_x" not in pg.psql("SELECT datname FROM pg_database").split()

    # Once the backup from before is pruned away, the retired identity is needed by none.
    subprocess.run(["rm", "-rf", os.path.join(root, "shop", ids["before"])], check=True)
    old = dict((i["recipient"], i) for i in lifeboat(["new"], "identities")["recipients"])[keys["old"][1]]
    assert old["needed_by"] == [] and old["opens"] == ["shop/" + ids["overlap"]]
    assert "its identity may go" in cli(config("new"), "identities", check=0).stdout
