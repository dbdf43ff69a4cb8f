"""The lifeboat command: every subcommand with --json parsed, and one exit code per kind of failure."""

import json
import os
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOP_TABLES = ["public.orders", "public.payments", "public.tickets", "public.users"]


class Lifeboat:
    """bin/lifeboat with a configuration file written from a dict."""

    def __init__(self, directory, config):
        self.directory = directory
        self.config = config

    def __call__(self, *args, config=None, rc=0):
        path = os.path.join(self.directory, "lifeboat-%s.yml" % uuid.uuid4().hex[:6])
        with open(path, "w") as handle:
            json.dump(config or self.config, handle)
        os.chmod(path, 0o600)
        proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", path] + list(args),
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == rc, "rc %d, expected %d\nstdout: %s\nstderr: %s" % (proc.returncode, rc, proc.stdout, proc.stderr)
        return proc

    def json(self, *args, **kwargs):
        """--json: exactly one JSON object on stdout."""
        proc = self(*(("--json",) + args), **kwargs)
        lines = proc.stdout.splitlines()
        assert len(lines) == 1, proc.stdout
        document = json.loads(lines[0])
        assert document["command"] == args[0]
        if document["ok"]:
            assert proc.stderr == "", proc.stderr
        else:
            # The same message, one line, on stderr for the humans reading cron mail.
            assert proc.stderr == "lifeboat: %s\n" % document["error"], proc.stderr
        return document

    def error(self, kind, rc, *args, config=None):
        """A failure of one kind: its exit code, and the message."""
        document = self.json(*args, config=config, rc=rc)
        assert document["ok"] is False and document["kind"] == kind, document
        return document["error"]


@pytest.fixture(scope="module")
def shop(pg, shop_template):
    name = "cli_shop_%s" % uuid.uuid4().hex[:6]
    pg.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, shop_template))
    return name


@pytest.fixture(scope="module")
def lifeboat(pg, shop, age_key, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("cli"))
    return Lifeboat(directory, {
        "connection": pg.connection(),
        "backup_root": os.path.join(directory, "backups"),
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {
            "shop": {"db": shop, "freshness_columns": {"payments": "created_at"}},
            "orders": {"db": shop, "tables": ["orders"]},
        },
    })


@pytest.fixture(scope="module")
def backup(lifeboat):
    """The backup every read-only test below reads."""
    result = lifeboat.json("backup", "--profile", "shop")
    assert result["ok"] is True and result["command"] == "backup"
    return result


def test_check_config(lifeboat, pg, tmp_path):
    document = lifeboat.json("check-config")
    assert document == {"ok": True, "command": "check-config", "profiles": ["orders", "shop"],
                        "backup_root": lifeboat.config["backup_root"]}
    connected = lifeboat.json("check-config", "--connect")
    assert connected["server_version"].startswith("15.") and connected["pg_dump_major"] == 15
    assert os.path.basename(connected["pg_dump"]) == "pg_dump"
    human = lifeboat("check-config")
    assert human.stdout == "configuration valid: 2 profiles (orders, shop)\n" and human.stderr == ""


def test_backup_dry_run_writes_nothing(lifeboat, shop):
    root = lifeboat.config["backup_root"] + "-dry"
    config = dict(lifeboat.config, backup_root=root)
    plan = lifeboat.json("backup", "--profile", "orders", "--dry-run", config=config)
    assert plan["ok"] is True and plan["database"] == shop and plan["encryption"] == "age"
    assert plan["tables"] == ["public.orders"]
    assert plan["definitions_only"] == ["public.payments", "public.tickets", "public.users"]
    assert not os.path.exists(root)
    human = lifeboat("backup", "--profile", "orders", "--dry-run", config=config)
    assert human.stdout.startswith("would dump %s (profile orders): rows of 1 tables, encryption age -> " % shop)


def test_backup(lifeboat, backup, pg, shop):
    assert backup["profile"] == "shop" and backup["database"] == shop
    assert [t["schema"] + "." + t["name"] for t in backup["tables"]] == SHOP_TABLES
    payments = int(pg.psql("SELECT count(*) FROM payments", db=shop))
    assert [t["rows"] for t in backup["tables"] if t["name"] == "payments"] == [payments]
    assert os.path.isfile(os.path.join(backup["path"], "manifest.json"))
    assert sorted(a["name"] for a in backup["artifacts"]) == ["%s.dump.zst.age" % shop, "globals.sql.zst.age"]
    assert backup["bytes"] == sum(a["bytes"] for a in backup["artifacts"])


def test_backup_by_a_least_privileged_role(lifeboat, backup, pg, shop, age_key):
    """A role that may only read (pg_read_all_data) and open three connections takes the same backup; its globals
    carry no password hashes, which only a superuser may read."""
    role, secret = "lb_reader_%s" % uuid.uuid4().hex[:6], uuid.uuid4().hex
    pg.psql("CREATE ROLE %s LOGIN CONNECTION LIMIT 3 PASSWORD '%s' IN ROLE pg_read_all_data" % (role, secret))
    try:
        config = dict(lifeboat.config, connection=pg.connection(login_user=role, login_password=secret),
                      backup_root=os.path.join(lifeboat.directory, "least-privileged"))
        result = lifeboat.json("backup", "--profile", "shop", config=config)
    finally:
        pg.psql("DROP ROLE %s" % role)
    assert [(t["name"], t["rows"]) for t in result["tables"]] == [(t["name"], t["rows"]) for t in backup["tables"]]
    age = subprocess.run(["age", "-d", "-i", age_key[0], os.path.join(result["path"], "globals.sql.zst.age")],
                         capture_output=True, check=True)
    globals_sql = subprocess.run(["zstd", "-d", "-c"], input=age.stdout, capture_output=True, check=True).stdout.decode()
    assert "CREATE ROLE %s;" % role in globals_sql
    assert "PASSWORD" not in globals_sql and "SCRAM-SHA-256" not in globals_sql


def test_list(lifeboat, backup):
    listed = lifeboat.json("list")
    assert sorted(k for k in listed if k not in ("ok", "command")) == ["shop"]
    health = listed["shop"]["health"]
    assert health["count"] == 1 and health["newest_id"] == backup["id"] and health["incomplete"] == []
    [entry] = listed["shop"]["backups"]
    assert entry["id"] == backup["id"] and entry["status"] == "complete" and entry["bytes"] == backup["bytes"]
    assert entry["encrypted"] is True
    human = lifeboat("list", "--profile", "shop")
    assert human.stdout.splitlines()[0].startswith("shop: 1 backups, ")
    assert human.stdout.splitlines()[1].split()[:2] == [backup["id"], "complete"]


@pytest.mark.parametrize("level", ["checksum", "archive", "restore"])
def test_verify_levels(lifeboat, backup, age_key, level):
    result = lifeboat.json("verify", "--profile", "shop", "--id", backup["id"], "--level", level, "--identity", age_key[0])
    assert result["ok"] is True and result["verified"] is True and result["level"] == level
    assert result["id"] == backup["id"] and result["bytes"] == backup["bytes"]
    if level == "restore":
        assert [t["table"] for t in result["tables"]] == SHOP_TABLES and all(t["match"] for t in result["tables"])
    listed = lifeboat.json("list", "--profile", "shop")["shop"]["backups"][0]["verification"]
    assert listed["ok"] is True and listed["level"] == level and level in listed["passed"]


def test_restore_dry_run_then_real(lifeboat, backup, pg, shop, age_key):
    target = "cli_restored_%s" % uuid.uuid4().hex[:6]
    args = ("restore", "--path", backup["path"], "--target", target, "--identity", age_key[0], "--jobs", "2")
    plan = lifeboat.json(*args, "--dry-run")
    assert plan["ok"] is True and plan["target_state"] == "absent" and plan["action"] == "create"
    assert plan["method"] == "decrypted temporary file, 2 jobs, loading public.payments while it decrypts"
    assert [t["table"] for t in plan["tables"]] == SHOP_TABLES
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % target).strip() == "0"

    restored = lifeboat.json(*args)
    assert restored["ok"] is True and restored["changed"] is True and restored["target"] == target
    assert set(restored["timings"]) >= {"decrypt_seconds", "restore_seconds", "total_seconds"}
    assert restored["timings"]["streamed_table"] == "public.payments"
    for table in SHOP_TABLES:
        assert pg.psql("SELECT count(*) FROM %s" % table, db=target) == pg.psql("SELECT count(*) FROM %s" % table, db=shop)

    message = lifeboat.error("restore", 7, *args)
    assert message == ("target database %s already exists; restore into a new name, or set create=false "
                       "(with clean=true to replace its objects)" % target)


def test_run(lifeboat, pg, shop):
    report = lifeboat.json("run", "--profile", "orders")
    assert report["ok"] is True and report["profile"] == "orders" and report["failed_step"] is None
    assert report["backup"]["verification"]["level"] == "archive" and report["backup"]["verification"]["verified"]
    assert [t["name"] for t in report["backup"]["tables"]] == ["orders"]
    assert report["prune"] is None  # no retention policy
    assert os.path.isfile(os.path.join(report["backup"]["path"], "manifest.json"))


# -- one exit code per kind of failure ------------------------------------------------------------------------------

def test_exit_code_config(lifeboat, tmp_path):
    assert lifeboat.error("config", 2, "backup", "--profile", "nope") == "unknown profile 'nope' (known profiles: orders, shop)"
    bad = dict(lifeboat.config, profiles={"shop": {"db": "x", "compression_level": 0}})
    message = lifeboat.error("config", 2, "check-config", config=bad)
    assert message.endswith(": profiles.shop.compression_level: must be between 1 and 19, got 0")
    missing = str(tmp_path / "missing.yml")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", missing, "--json", "list"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"] == "configuration file %s does not exist" % missing


def test_exit_code_lock(lifeboat, engine, backup):
    profile_dir = os.path.dirname(backup["path"])
    with engine.storage.ProfileLock(profile_dir, "shop"):
        message = lifeboat.error("lock", 3, "backup", "--profile", "shop")
    assert message == "another run of profile shop is in progress (pid %d); not starting a second one" % os.getpid()


def test_exit_code_database(lifeboat, pg):
    config = dict(lifeboat.config, connection=pg.connection(login_user="nobody_here"))
    message = lifeboat.error("database", 4, "backup", "--profile", "shop", config=config)
    assert message.startswith("Failed to dump database ") and 'password authentication failed for user "nobody_here"' in message


def test_exit_code_dump(lifeboat, pg, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text('#!/bin/sh\n[ "$1" = --version ] && echo "pg_dump (PostgreSQL) 15.99" && exit 0\n'
                                  'echo "pg_dump: error: injected failure" >&2\nexit 1\n')
    (fake / "pg_dump").chmod(0o755)
    config = dict(lifeboat.config, connection=pg.connection(pg_bin_dir=str(fake)))
    message = lifeboat.error("dump", 5, "backup", "--profile", "orders", config=config)
    assert message.endswith("(profile orders): pg_dump exited with status 1: pg_dump: error: injected failure")


def test_exit_code_verify(lifeboat, backup, age_key, tmp_path):
    copy = str(tmp_path / backup["id"])
    subprocess.run(["cp", "-a", backup["path"], copy], check=True)
    artifact = [a["name"] for a in backup["artifacts"] if a["kind"] == "globals"][0]
    with open(os.path.join(copy, artifact), "ab") as handle:
        handle.write(b"\0")
    message = lifeboat.error("verify", 6, "verify", "--path", copy, "--level", "checksum")
    assert message == ("Verification (checksum) of backup %s failed: artifact %s is %d bytes but the manifest records %d (grown)"
                       % (backup["id"], artifact, os.path.getsize(os.path.join(copy, artifact)),
                          os.path.getsize(os.path.join(copy, artifact)) - 1))


def test_exit_code_storage(lifeboat, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = dict(lifeboat.config, backup_root=str(blocker / "backups"), log_dir=str(tmp_path / "log"),
                  metrics_dir=str(tmp_path / "metrics"))
    message = lifeboat.error("storage", 8, "backup", "--profile", "orders", config=config)
    assert message.endswith("(profile orders): cannot create directory %s: Not a directory" % (blocker / "backups"))


def test_exit_code_not_found(lifeboat, backup):
    message = lifeboat.error("not_found", 10, "verify", "--profile", "shop", "--id", "20000101T000000Z", "--level", "checksum")
    assert message == "backup 20000101T000000Z of profile shop not found under %s" % lifeboat.config["backup_root"]
    message = lifeboat.error("not_found", 10, "restore", "--profile", "orders-none", "--target", "x")
    assert message.startswith("profile orders-none has no complete backup under ")
