"""The four modules through ansible, against the real cluster: check mode, real run, state check, rerun."""

import json
import os
import stat


def _conn(pg):
    return pg.connection()


def test_dump_check_mode_writes_nothing_then_dumps(module, pg, shop_db, age_key, backup_root):
    args = dict(_conn(pg), db=shop_db, profile="shop", backup_root=backup_root, recipients=[age_key[1]],
                freshness_columns={"public.payments": "created_at"}, backup_timeout=600)
    planned = module("dump", args, check=True)
    assert not planned.failed, planned.result
    assert planned["backup"]["tables"] == ["public.orders", "public.payments", "public.tickets", "public.users"]
    assert not os.path.exists(backup_root)

    first = module("dump", args)
    assert first.changed and not first.failed, first.result
    backup = first["backup"]
    assert os.path.isfile(os.path.join(backup["path"], "manifest.json"))
    assert stat.S_IMODE(os.stat(backup["path"]).st_mode) == 0o700
    for item in backup["artifacts"]:
        assert stat.S_IMODE(os.stat(os.path.join(backup["path"], item["name"])).st_mode) == 0o600
    rows = dict((t["name"], t["rows"]) for t in backup["tables"])
    assert rows["payments"] == int(pg.psql("SELECT count(*) FROM payments", db=shop_db))
    assert backup["freshness"][0]["newest"] == pg.psql(
        "SET TimeZone='UTC'; SELECT max(created_at)::text FROM payments", db=shop_db).strip()

    # A dump always takes a new backup: a second run is a second backup, not a no-op.
    second = module("dump", args)
    assert second.changed and second["backup"]["id"] != backup["id"]


def test_dump_requires_recipients_unless_encryption_none(module, pg, shop_db, backup_root):
    refused = module("dump", dict(_conn(pg), db=shop_db, backup_root=backup_root))
    assert refused.failed and "encryption.recipients" in refused["msg"]
    plain = module("dump", dict(_conn(pg), db=shop_db, backup_root=backup_root, encryption="none"))
    assert not plain.failed, plain.result
    assert [a["name"] for a in plain["backup"]["artifacts"]] == ["%s.dump.zst" % shop_db, "globals.sql.zst"]


def test_verify_levels_and_restore_through_modules(module, pg, shop_db, age_key, backup_root):
    identity = age_key[0]
    dumped = module("dump", dict(_conn(pg), db=shop_db, profile="shop", backup_root=backup_root, recipients=[age_key[1]]))
    assert not dumped.failed, dumped.result

    for level in ("checksum", "archive", "restore"):
        args = dict(_conn(pg), profile="shop", backup_root=backup_root, level=level, identity_file=identity)
        checked = module("verify", args, check=True)
        assert not checked.failed and not checked.changed
        assert checked["verification"]["verified"] is False
        verified = module("verify", args)
        assert not verified.failed, verified.result
        assert not verified.changed and verified["verification"]["verified"]
    assert {t["table"] for t in verified["verification"]["tables"]} == {"public.orders", "public.payments", "public.tickets", "public.users"}
    with open(os.path.join(dumped["backup"]["path"], "verification.json")) as handle:
        assert json.load(handle)["passed"].keys() == {"checksum", "archive", "restore"}

    target = shop_db + "_restored"
    restore_args = dict(_conn(pg), profile="shop", backup_root=backup_root, db=target, identity_file=identity, jobs=2)
    plan = module("restore", restore_args, check=True)
    assert not plan.failed, plan.result
    assert plan["restore"]["target_state"] == "absent"
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % target).strip() == "0"

    restored = module("restore", restore_args)
    assert restored.changed and not restored.failed, restored.result
    for table in ("orders", "payments", "tickets", "users"):
        assert pg.psql("SELECT count(*) FROM %s" % table, db=target) == pg.psql("SELECT count(*) FROM %s" % table, db=shop_db)

    again = module("restore", restore_args)
    assert again.failed and "already exists" in again["msg"]


def test_catalog_info_reports_health(module, pg, shop_db, age_key, backup_root):
    module("dump", dict(_conn(pg), db=shop_db, profile="orders", tables=["orders"], backup_root=backup_root, recipients=[age_key[1]]))
    os.makedirs(os.path.join(backup_root, "orders", "20200101T000000Z"))  # a leftover without manifest
    info = module("catalog_info", dict(backup_root=backup_root))
    assert not info.failed and not info.changed
    health = info["profiles"]["orders"]["health"]
    assert health["count"] == 1
    assert health["incomplete"] == ["20200101T000000Z"]
    assert health["newest_age_seconds"] < 600
    checked = module("catalog_info", dict(backup_root=backup_root), check=True)
    assert not checked.failed and checked["profiles"]["orders"]["health"]["count"] == 1
