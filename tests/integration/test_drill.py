"""Disaster-recovery drills against real PostgreSQL, age and SeaweedFS.

A "source host" (backup root, configuration and host name of its own) takes backups and pushes them; a "drill
host" (another backup root, configuration and host name, nothing local) restores them from the bucket alone.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psycopg2
import pytest
from seaweed import SECRET_KEY, SeaweedFS

SOURCE = "source-db1"
DRILL_HOST = "drill-host"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3):
    return s3.bucket()


class Hosts:
    """The two hosts of one test: their configurations (as dicts, for the CLI) and directories."""

    def __init__(self, engine, pg, age_key, tmp_path, s3, bucket, db):
        self.engine, self.pg, self.age_key, self.s3, self.bucket, self.db = engine, pg, age_key, s3, bucket, db
        self.tmp = tmp_path
        self.reports = str(tmp_path / "drill-host" / "reports")
        self.work = str(tmp_path / "drill-host" / "work")
        os.makedirs(self.work, mode=0o700)
        self.source = {
            "connection": pg.connection(), "backup_root": str(tmp_path / "source" / "backups"), "host": SOURCE,
            "encryption": {"mode": "age", "recipients": [age_key[1]]}, "offsite": s3.target(bucket),
            "profiles": {"shop": {"db": db, "freshness_columns": {"public.payments": "created_at"}}},
        }

    def drill_config(self, **drill):
        """The drill host: its own root and name; the profile only to carry the drill settings."""
        section = dict({"source_host": SOURCE, "rto_objective": "4h", "rpo_objective": "1h",
                        "checks": [{"name": "recent payments", "sql": "select max(created_at) > now() - interval '2 days' from payments"}]},
                       **drill)
        return {
            "connection": self.pg.connection(), "backup_root": str(self.tmp / "drill-host" / "backups"), "host": DRILL_HOST,
            "offsite": self.s3.target(self.bucket), "report_dir": self.reports,
            "profiles": {"shop": {"db": "shop", "drill": section}},
        }

    def back_up_and_push(self, count=1):
        config = self.engine.config.validate_config(self.source)
        ids = []
        for _backup in range(count):
            result = self.engine.dump.backup(config, "shop", via="test")
            self.engine.push.push(config, self.engine.catalog.resolve(path=result["path"]), via="test")
            ids.append(result["id"])
        return ids

    def disaster(self):
        """The source host is gone: its backups and its database."""
        subprocess.run(["rm", "-rf", str(self.tmp / "source")], check=True)
        self.pg.psql('DROP DATABASE "%s" WITH (FORCE)' % self.db)

    def run(self, config, **options):
        options.setdefault("identity_file", self.age_key[0])
        options.setdefault("tmp_dir", self.work)
        cfg = self.engine.config.validate_config(config)
        return self.engine.drill.drill(cfg, "shop", self.engine.drill.Options(**options), via="test")

    def scratch_databases(self):
        return self.pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'lifeboat_drill_%'", db="postgres").split()

    def metrics(self, config):
        path = os.path.join(config.get("metrics_dir") or config["backup_root"] + "/.metrics", "lifeboat_drill_shop.prom")
        with open(path) as handle:
            return dict((line.rsplit(" ", 1)[0], float(line.split()[-1])) for line in handle if not line.startswith("#"))

    def audit(self, config):
        with open(os.path.join(config["backup_root"], ".log", "audit.jsonl")) as handle:
            return [json.loads(line) for line in handle]

    def reports_of(self, ext):
        return sorted(glob.glob(os.path.join(self.reports, "shop", "*." + ext)))


@pytest.fixture
def hosts(engine, pg, age_key, tmp_path, s3, bucket, shop_db):
    made = Hosts(engine, pg, age_key, tmp_path, s3, bucket, shop_db)
    yield made
    for name in made.scratch_databases():  # a failing test must not leave scratch databases to the next
        pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def _labels(name):
    return '%s{profile="shop",source_host="%s"}' % (name, SOURCE)


def test_drill_restores_from_the_bucket_alone_on_a_host_that_never_saw_the_backup(hosts, s3, bucket):
    ids = hosts.back_up_and_push(count=2)
    hosts.disaster()
    config = hosts.drill_config(jobs=2)
    assert not os.path.exists(config["backup_root"])

    result = hosts.run(config)

    assert result["ok"] is True and result["backup_id"] == ids[-1]  # the newest complete one
    assert result["source_host"] == SOURCE and result["drill_host"] == DRILL_HOST
    assert [n for n, s in result["stages"].items() if s["outcome"] != "ok"] == []
    checks = dict((c["name"], c) for c in result["checks"])
    assert sorted(checks) == ["amcheck", "content sample", "recent payments", "row counts and freshness"]
    assert all(c["ok"] is True for c in checks.values()), checks
    assert "4 tables" in checks["row counts and freshness"]["detail"]
    assert "B-tree indexes checked" in checks["amcheck"]["detail"] and not checks["amcheck"]["detail"].startswith("0 ")
    assert "in 4 tables" in checks["content sample"]["detail"]
    assert 0 < result["rto_seconds"] < 3600 and result["rpo_seconds"] > 0
    assert result["objectives"]["rto"]["met"] and result["objectives"]["rpo"]["met"]
    assert result["objectives"]["rto"]["target"] == "4h" and result["objectives"]["rto"]["target_seconds"] == 14400

    # Torn down: no scratch database, nothing downloaded or decrypted left; nothing written as a local backup.
    assert hosts.scratch_databases() == []
    assert os.listdir(hosts.work) == []
    assert not os.path.exists(os.path.join(config["backup_root"], "shop"))

    # The report, here and in the bucket.
    report = result["report"]
    for path in (report["json"], report["markdown"], report["html"]):
        assert os.stat(path).st_mode & 0o077 == 0, path
    document = json.load(open(report["json"]))
    assert document["backup"]["id"] == ids[-1] and document["backup"]["host"] == SOURCE
    assert [i["done"] for i in document["checklist"]] == [True] * 6
    page = open(report["html"]).read()
    assert "<svg" in page and "<script" not in page and "<link" not in page and "@import" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "| RTO |" in open(report["markdown"]).read()
    keys = s3.keys(bucket, "lifeboat/drills/")
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == sorted(os.path.basename(p) for p in report.values() if isinstance(p, str))
    assert SECRET_KEY not in open(report["json"]).read()

    # Audit line and metrics of the drill host.
    line = [a for a in hosts.audit(config) if a["action"] == "drill"][-1]
    assert line["result"] == "ok" and line["backup_id"] == ids[-1] and line["profile"] == "shop"
    metrics = hosts.metrics(config)
    assert metrics[_labels("lifeboat_drill_objective_met")] == 1
    assert metrics[_labels("lifeboat_drill_rto_seconds")] == result["rto_seconds"]
    assert metrics[_labels("lifeboat_drill_rpo_seconds")] == result["rpo_seconds"]
    assert metrics[_labels("lifeboat_drill_last_success_timestamp_seconds")] >= metrics[_labels("lifeboat_drill_last_run_timestamp_seconds")]

    # A second drill (a given id this time) adds to the trend.
    again = hosts.run(config, backup_id=ids[0])
    assert again["ok"] and again["backup_id"] == ids[0]
    assert len(hosts.reports_of("json")) == 2
    assert open(again["report"]["html"]).read().count("<circle") == 4  # two drills, two charts


def test_missed_objective_fails_with_its_own_exit_code_naming_objective_target_and_measurement(hosts, cli):
    hosts.back_up_and_push()
    # A check that takes 1.2 s makes the measured RTO longer than 1 s however fast the machine is.
    config = hosts.drill_config(rto_objective="1s", checks=[{"name": "slow check", "sql": "select pg_sleep(1.2) is not null"}])
    failed = cli(config, "drill", "--profile", "shop", "--identity", hosts.age_key[0], "--report-dir", hosts.reports, check=11)
    assert "Failed to drill profile shop: RTO objective missed: target 1s (1s), measured" in failed.stderr, failed.stderr
    assert "RPO" not in failed.stderr
    assert hosts.scratch_databases() == []
    document = json.load(open(hosts.reports_of("json")[-1]))
    assert document["ok"] is True and document["objectives"]["rto"]["met"] is False
    metrics = hosts.metrics(config)
    assert metrics[_labels("lifeboat_drill_objective_met")] == 0
    assert _labels("lifeboat_drill_last_success_timestamp_seconds") not in metrics


def test_corrupted_object_fails_the_fetch_naming_the_object(hosts, s3, bucket):
    backup_id = hosts.back_up_and_push()[0]
    client = s3.client()
    key = next(k for k in s3.keys(bucket) if k.endswith(".dump.zst.age"))
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    config = hosts.drill_config()
    with pytest.raises(hosts.engine.errors.VerifyError) as failed:
        hosts.run(config)
    message = str(failed.value)
    assert "fetch of backup %s failed" % backup_id in message and "s3://%s/%s" % (bucket, key) in message, message
    assert "corrupted" in message
    assert hosts.scratch_databases() == [] and os.listdir(hosts.work) == []
    document = json.load(open(hosts.reports_of("json")[-1]))
    assert document["ok"] is False and document["stages"]["fetch"]["outcome"].startswith("failed")
    assert document["stages"]["restore"]["outcome"] == "not run"
    assert hosts.metrics(config)[_labels("lifeboat_drill_objective_met")] == 0


def test_failing_sql_check_fails_the_drill_naming_the_check(hosts):
    hosts.back_up_and_push()
    config = hosts.drill_config(checks=[
        {"name": "recent payments", "sql": "select max(created_at) > now() - interval '2 days' from payments"},
        {"name": "payments from the future", "sql": "select count(*) > 0 from payments where created_at > now() + interval '1 year'"},
    ])
    with pytest.raises(hosts.engine.errors.VerifyError) as failed:
        hosts.run(config)
    assert "payments from the future: returned false" in str(failed.value), str(failed.value)
    assert "recent payments" not in str(failed.value)
    assert hosts.scratch_databases() == []
    document = json.load(open(hosts.reports_of("json")[-1]))
    checks = dict((c["name"], c["ok"]) for c in document["checks"])
    assert checks == {"row counts and freshness": True, "amcheck": True, "content sample": True,
                      "recent payments": True, "payments from the future": False}


def test_damaged_index_is_caught_by_amcheck(hosts, pg, monkeypatch):
    """Bytes of a B-tree leaf page overwritten on disk while the cluster is stopped, between restore and checks."""
    hosts.back_up_and_push()
    drill = hosts.engine.drill
    original = drill.run_checks

    def corrupt_then_check(connection, database, manifest, checks, **options):
        path = pg.psql("SELECT pg_relation_filepath('payments_created_at')", db=database).strip()
        pg.psql("CHECKPOINT", db=database)
        pg.stop()
        with open(os.path.join(pg.info["data"], path), "r+b") as handle:
            handle.seek(8192 + 8192 - 16 - 2048)  # the tuples at the end of leaf page 1, before the special space
            handle.write(b"\x7f" * 2048)
        pg.start()
        return original(connection, database, manifest, checks, **options)

    monkeypatch.setattr(drill, "run_checks", corrupt_then_check)
    with pytest.raises(hosts.engine.errors.VerifyError) as failed:
        hosts.run(hosts.drill_config(jobs=2))  # two sessions check indexes at once: the damage is still named
    message = str(failed.value)
    assert "amcheck: index public.payments_created_at:" in message, message
    assert hosts.scratch_databases() == []


def test_sigterm_mid_restore_leaves_no_scratch_database(hosts, tmp_path):
    hosts.back_up_and_push()
    config_path = tmp_path / "drill.yml"
    config_path.write_text(json.dumps(hosts.drill_config()))
    config_path.chmod(0o600)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # Pause inside the restore, once the scratch database exists: the point SIGTERM has to hit.
    marker = tmp_path / "restoring"
    script = (
        "import sys, time, pathlib; sys.argv = ['lifeboat'] + sys.argv[1:]\n"
        "sys.path.insert(0, %r); from tests.conftest import load_engine; engine = load_engine()\n"
        "restore = engine._actions.restore\n"
        "original = restore.restore_archive\n"
        "def paused(*a, **k):\n"
        "    pathlib.Path(%r).write_text('x'); time.sleep(120); return original(*a, **k)\n"
        "restore.restore_archive = paused\n"
        "from lifeboat_engine._front import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n" % (repo, str(marker))
    )
    proc = subprocess.Popen([sys.executable, "-c", script, "--config", str(config_path), "drill", "--profile", "shop",
                             "--identity", hosts.age_key[0], "--tmp-dir", hosts.work],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the drill never reached the restore"
        time.sleep(0.2)
    assert len(hosts.scratch_databases()) == 1
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert hosts.scratch_databases() == []
    assert os.listdir(hosts.work) == []
    document = json.load(open(hosts.reports_of("json")[-1]))
    assert document["stages"]["restore"]["outcome"] == "interrupted" and document["stages"]["teardown"]["outcome"] == "ok"


def test_keep_leaves_the_scratch_database_and_says_where(hosts):
    hosts.back_up_and_push()
    result = hosts.run(hosts.drill_config(), keep=True)
    assert result["ok"] and result["stages"]["teardown"]["outcome"] == "kept"
    assert hosts.scratch_databases() == [result["scratch_database"]]
    assert result["scratch_database"] in result["kept"]
    assert any(os.path.isdir(path) for path in result["kept"])
    hosts.pg.psql('DROP DATABASE "%s"' % result["scratch_database"])


def test_check_mode_returns_the_plan_and_touches_nothing(hosts):
    ids = hosts.back_up_and_push()
    config = hosts.drill_config()
    planned = hosts.run(config, check_mode=True)
    assert planned["backup_id"] == ids[0] and planned["changed"] is False
    assert planned["checks"] == ["row counts and freshness", "amcheck", "content sample", "recent payments"]
    assert planned["scratch_database"].startswith("lifeboat_drill_shop_")
    assert hosts.scratch_databases() == [] and not os.path.exists(hosts.reports)
    assert not os.path.exists(config["backup_root"])


def test_module_check_mode_then_real_run_through_ansible(hosts, module, s3, bucket):
    backup_id = hosts.back_up_and_push()[0]
    hosts.disaster()
    root = str(hosts.tmp / "drill-host" / "backups")
    args = dict(hosts.pg.connection(), profile="shop", backup_root=root, report_dir=hosts.reports, tmp_dir=hosts.work,
                identity_file=hosts.age_key[0], jobs=2, rto_objective="4h", rpo_objective="1h",
                checks=[{"name": "recent payments", "sql": "select max(created_at) > now() - interval '2 days' from payments"}],
                offsite=dict(s3.target(bucket), host=SOURCE))

    planned = module("drill", args, check=True)
    assert not planned.failed and not planned.changed, planned.result
    assert planned["drill"]["backup_id"] == backup_id and planned["drill"]["source_host"] == SOURCE
    assert planned["drill"]["checks"][-1] == "recent payments"
    assert hosts.scratch_databases() == [] and not os.path.exists(hosts.reports) and not os.path.exists(root)
    assert s3.keys(bucket, "lifeboat/drills/") == []

    ran = module("drill", args)
    assert not ran.failed and ran.changed, ran.result
    assert ran["drill"]["ok"] and ran["drill"]["backup_id"] == backup_id and ran["drill"]["objectives"]["rpo"]["met"]
    assert all(c["ok"] for c in ran["drill"]["checks"])
    assert os.path.exists(ran["drill"]["report"]["html"]) and hosts.scratch_databases() == []
    assert len(s3.keys(bucket, "lifeboat/drills/")) == 3
    assert hosts.pg.password not in ran.proc.stdout and SECRET_KEY not in ran.proc.stdout

    missed = module("drill", dict(args, rpo_objective="1s"))
    assert missed.failed and missed["error_kind"] == "objective", missed.result
    assert "RPO objective missed: target 1s" in missed["msg"] and missed["drill"]["objectives"]["rpo"]["met"] is False
    assert hosts.scratch_databases() == []


def _runner(tmp_path, extravars, ident):
    """The private data directory AWX hands to ansible-runner: env/, inventory/, project/."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    venv_bin = os.path.join(repo, ".venv", "bin")
    private = tmp_path / ("runner-" + ident)
    (private / "env").mkdir(parents=True)
    fd = os.open(str(private / "env" / "extravars"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(extravars, handle)
    (private / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(repo, ".build", "collections"), "ANSIBLE_LOCALHOST_WARNING": "0"}))
    shutil.copytree(os.path.join(repo, "inventories", "local"), private / "inventory")
    shutil.copytree(os.path.join(repo, "playbooks"), private / "project" / "playbooks")
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([os.path.join(venv_bin, "ansible-runner"), "run", str(private), "-p", "playbooks/dr_drill.yml",
                           "--ident", ident], capture_output=True, text=True, timeout=900, env=env, check=False)
    artifacts = private / "artifacts" / ident
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else proc.stdout + proc.stderr
    return (artifacts / "status").read_text(), stdout


def test_dr_drill_playbook_through_ansible_runner_as_awx_runs_it(hosts, tmp_path, s3, bucket):
    backup_id = hosts.back_up_and_push()[0]
    hosts.disaster()
    config = hosts.drill_config()
    extravars = {
        "dr_drill_hosts": "lifeboat_hosts", "dr_drill_identity_file": hosts.age_key[0], "dr_drill_report_dir": hosts.reports,
        "dr_drill_tmp_dir": hosts.work,
        "agent_connection": hosts.pg.connection(), "agent_offsite": dict(s3.target(bucket), enabled=True),
        "agent_backup_root": config["backup_root"], "agent_log_dir": str(tmp_path / "log"),
        "agent_metrics_dir": str(tmp_path / "metrics"), "agent_profiles": config["profiles"],
    }
    status, stdout = _runner(tmp_path, extravars, "drill")
    assert status == "successful", stdout
    assert "shop: backup %s of host %s restored and checked" % (backup_id, SOURCE) in stdout
    assert hosts.pg.password not in stdout and SECRET_KEY not in stdout
    assert hosts.scratch_databases() == [] and len(hosts.reports_of("html")) == 1
    assert os.path.exists(os.path.join(str(tmp_path / "metrics"), "lifeboat_drill_shop.prom"))

    # A failing check fails the job, naming the profile and the check.
    extravars["agent_profiles"]["shop"]["drill"]["checks"] = [{"name": "no refunds", "sql": "select count(*) = 0 from payments where status = 'refunded'"}]
    status, stdout = _runner(tmp_path, extravars, "failing")
    assert status == "failed" and "no refunds: returned false" in stdout, stdout
    assert hosts.scratch_databases() == []

    # Without dr_drill_hosts nothing runs: a drill creates databases, there is no default target.
    del extravars["dr_drill_hosts"]
    status, stdout = _runner(tmp_path, extravars, "untargeted")
    assert status == "failed" and "dr_drill_hosts" in stdout, stdout
    assert len(hosts.reports_of("json")) == 2


def test_content_sample_catches_a_changed_row_that_counts_do_not(hosts, pg, monkeypatch):
    """One sampled row changed after the restore (same row count): only the content sample can tell."""
    hosts.back_up_and_push()
    drill = hosts.engine.drill
    original = drill.run_checks

    def change_then_check(connection, database, manifest, checks, **options):
        pg.psql("UPDATE payments SET amount = amount + 1 WHERE id = (SELECT id FROM payments "
                "WHERE (hashtext(ROW(id)::text) & 15) = 0 ORDER BY id LIMIT 1)", db=database)
        return original(connection, database, manifest, checks, **options)

    monkeypatch.setattr(drill, "run_checks", change_then_check)
    with pytest.raises(hosts.engine.errors.VerifyError) as failed:
        hosts.run(hosts.drill_config())
    message = str(failed.value)
    assert "content sample: table public.payments:" in message, message
    assert "row counts" not in message and "amcheck" not in message


def test_local_source_on_the_source_host_says_it_is_weaker_and_random_pick_stays_in_the_window(hosts):
    ids = hosts.back_up_and_push(count=2)
    source = dict(hosts.source, report_dir=hosts.reports)
    source["profiles"] = {"shop": dict(hosts.source["profiles"]["shop"], retention={"keep_within": "7d"},
                                       drill={"source": "local", "rpo_objective": "1h"})}
    planned = hosts.run(source, pick="random", check_mode=True)
    assert planned["backup_id"] in ids and planned["source"] == "local"
    result = hosts.run(source)
    assert result["ok"] and result["backup_id"] == ids[-1] and "weaker" not in (result["source_note"] or "x")
    assert "proves less than an offsite drill" in result["source_note"]
    assert "proves less" in open(result["report"]["markdown"]).read()
    assert "bucket" not in result["report"]
    assert hosts.scratch_databases() == []


def test_failed_drill_sends_the_webhook_and_leaves_the_dead_mans_switch_alone(hosts, receiver):
    hosts.back_up_and_push()
    config = hosts.drill_config(checks=[{"name": "no refunds", "sql": "select count(*) = 0 from payments where status = 'refunded'"}])
    config["notify"] = {"webhook_url": receiver.url("ok", "hook"), "deadman_url": receiver.url("ok", "deadman")}
    with pytest.raises(hosts.engine.errors.VerifyError):
        hosts.run(config)
    assert receiver.paths() == ["/ok/hook"]  # the deadman URL watches the profile's backups, not drills
    body = json.loads(receiver.requests[0]["body"])
    assert body["status"] == "failure" and body["profile"] == "shop" and body["step"] == "drill checks"
    assert "no refunds: returned false" in body["error"] and hosts.pg.password not in receiver.requests[0]["body"]

    passing = hosts.drill_config()
    passing["notify"] = {"webhook_url": receiver.url("ok", "hook"), "on_success": True}
    assert hosts.run(passing)["ok"]
    assert json.loads(receiver.requests[-1]["body"])["status"] == "success" and len(receiver.requests) == 2


def test_without_a_content_sample_the_drill_says_skipped_and_does_not_tick_sampling(hosts):
    hosts.source["profiles"]["shop"]["content_sample"] = False
    hosts.back_up_and_push()
    result = hosts.run(hosts.drill_config())
    sample = [c for c in result["checks"] if c["name"] == "content sample"][0]
    assert result["ok"] and sample["ok"] is None and sample["detail"].startswith("skipped"), sample
    checklist = json.load(open(result["report"]["json"]))["checklist"]
    assert [i["done"] for i in checklist if i["item"].startswith("Verify data integrity")] == [False]


def test_content_sample_is_the_one_recorded_by_earlier_backups(engine, pg, shop_db):
    """The sample's SQL may get cheaper, never different: manifests already in buckets hold digests of this formula
    (the single pass with two FILTERs it had when SAMPLE_METHOD was named). A composite key and NULLs included."""
    pg.psql("CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (a, b)); "
            "INSERT INTO pairs SELECT i, 'k' || i % 7, CASE WHEN i % 3 = 0 THEN NULL ELSE md5(i::text) END "
            "FROM generate_series(1, 5000) i", db=shop_db)
    tables = engine.tables
    assert tables.SAMPLE_METHOD == "hashtext(key) & 15 = 0; sum of md5(row_to_json) first 60 bits"
    handle = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname=shop_db)
    try:
        handle.autocommit = True
        cursor = handle.cursor()
        cursor.execute("SET TimeZone TO 'UTC'")
        for name, key in (("payments", ["id"]), ("pairs", ["a", "b"])):
            bucket = "(hashtext(ROW(%s)::text) & 15) = 0" % ", ".join("r.%s" % column for column in key)
            cursor.execute("SELECT count(*), count(*) FILTER (WHERE {b}), coalesce(sum(('x' || left(md5(row_to_json(r)::text), "
                           "15))::bit(60)::int8::numeric) FILTER (WHERE {b}), 0)::text FROM ONLY public.{t} AS r"
                           .format(b=bucket, t=name))
            rows, sampled, digest = cursor.fetchone()
            (counted,) = tables.count_rows(handle, [tables.Table(None, "public", name, "r")], sample=True)
            assert (counted["rows"], counted["sample"]["rows"], counted["sample"]["digest"]) == (rows, sampled, digest)
            assert counted["sample"]["key"] == key and 0 < sampled < rows
    finally:
        handle.close()
