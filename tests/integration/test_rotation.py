"""Credential rotation against a real server that logs every statement and tracks utility commands.

The cluster of this module has log_statement=all, log_connections=on and pg_stat_statements (track_utility on),
so whatever reaches the server is on record: the tests read that record for the new passwords and verifiers.
"""

import json
import os
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from scripts import connload, pgcluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD_SECONDS = 22
WORKERS = 4


@pytest.fixture(scope="module")
def logged():
    cluster = pgcluster.create()
    for setting in ("shared_preload_libraries = 'pg_stat_statements'", "log_statement = 'all'", "log_connections = on"):
        cluster.psql("ALTER SYSTEM SET " + setting)
    cluster.stop()
    cluster.start()
    pgcluster.wait_ready(cluster)
    cluster.psql("CREATE EXTENSION pg_stat_statements")
    assert cluster.psql("SHOW pg_stat_statements.track_utility").strip() == "on"
    assert cluster.psql("SHOW log_statement").strip() == "all"
    yield cluster
    cluster.destroy()


@pytest.fixture
def root(tmp_path):
    directory = tmp_path / "lifeboat"
    directory.mkdir(mode=0o700)
    return directory


def config_for(engine, cluster, root, **extra):
    data = {"connection": cluster.connection(), "backup_root": str(root / "backups"), "encryption": {"mode": "none"}}
    data.update(extra)
    return engine.config.validate_config(data)


def server_record(cluster):
    """Everything the server wrote down: its log and the statements pg_stat_statements kept."""
    with open(cluster.info["log"], "rb") as handle:
        log = handle.read()
    statements = cluster.psql("SELECT string_agg(query, E'\\n') FROM pg_stat_statements").encode()
    return log, statements


def verifier_of(cluster, login):
    return cluster.psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % login).strip()


def env_credential(path):
    return connload.read_env(path)  # as the load's clients read it


def login(cluster, user, password, db="postgres"):
    handle = psycopg2.connect(host="127.0.0.1", port=cluster.port, user=user, password=password, dbname=db,
                              connect_timeout=10)
    try:
        with handle.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        handle.close()


def refused(cluster, user, password):
    try:
        login(cluster, user, password)
    except psycopg2.OperationalError as exc:
        return str(exc)
    return None


def make_app(cluster, name):
    """A group role holding SELECT on a table of its own database."""
    cluster.psql("CREATE DATABASE %s" % name)
    cluster.psql("CREATE ROLE %s NOLOGIN" % name)
    cluster.psql("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2); GRANT SELECT ON orders TO %s" % name,
                 db=name)


def test_verifier_logs_in_and_equals_the_servers(engine, logged):
    """A password set by plain ALTER ROLE: recomputed with the server's salt, the verifier is the server's; ours logs in."""
    logged.psql("CREATE ROLE scram_probe LOGIN PASSWORD 'Plain-Text-1234'")
    stored = verifier_of(logged, "scram_probe")
    iterations, salt, _stored_key, _server_key = engine.scram.parse(stored)
    assert engine.scram.verifier("Plain-Text-1234", salt=salt, iterations=iterations) == stored
    ours = engine.scram.verifier("Another-Secret-5678")
    logged.psql("ALTER ROLE scram_probe PASSWORD '%s'" % ours)
    assert verifier_of(logged, "scram_probe") == ours
    assert login(logged, "scram_probe", "Another-Secret-5678") == "scram_probe"
    assert refused(logged, "scram_probe", "Plain-Text-1234")


class CmdlineSampler(threading.Thread):
    """Reads every process's argv over and over while the rotation runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = set()
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as handle:
                            self.samples.add(handle.read())
                    except OSError:
                        pass
            time.sleep(0.05)


def test_alternate_rotation_under_load_fails_no_login_and_leaks_nothing(engine, logged, root):
    """Clients reading the env file per connection never fail across two rotations; the old login is refused after
    grace; neither password is in argv, the server log, pg_stat_statements or the audit log, nor the verifier in the log."""
    make_app(logged, "shop_app")
    env = str(root / "app.env")
    options = dict(role="shop_app", db="shop_app", consumers=[{"type": "env", "path": env}], grace="4s",
                   tests=["has_table_privilege('orders', 'SELECT')"])
    config = config_for(engine, logged, root)
    first = engine.rotate.rotate(config, **options)
    assert first["rotated"] and first["active_login"] == "shop_app_a"
    assert os.stat(env).st_mode & 0o777 == 0o600
    first_password = env_credential(env)[1]
    sampler = CmdlineSampler()
    sampler.start()
    load = [sys.executable, os.path.join(REPO, "scripts", "connload.py"), "--env", env, "--port", str(logged.port),
            "--db", "shop_app", "--seconds", str(LOAD_SECONDS), "--query", "SELECT count(*) FROM orders"]
    workers = [subprocess.Popen(load, stdout=subprocess.PIPE, text=True) for _worker in range(WORKERS)]
    verifiers = []
    try:
        time.sleep(5)
        second = engine.rotate.rotate(config, force=True, **options)
        assert second["rotated"] and second["active_login"] == "shop_app_b" and second["retired_login"] is None
        assert second["pending_retirement"][0]["login"] == "shop_app_a"
        verifiers.append(verifier_of(logged, "shop_app_b"))
        time.sleep(1)
        assert login(logged, "shop_app_a", first_password) == "shop_app_a"  # within grace the old login works
        time.sleep(5)  # grace has passed; the next run enforces it
        third = engine.rotate.rotate(config, **options)
        assert third["changed"] and not third["rotated"] and third["retired_login"] == "shop_app_a"
        results = [json.loads(w.communicate(timeout=LOAD_SECONDS + 60)[0]) for w in workers]
    finally:
        sampler.done.set()
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert all(r["ok"] > 20 for r in results), results
    assert sum(r["failed"] for r in results) == 0, [r["errors"] for r in results]
    seen = set(tuple(pair) for r in results for pair in r["seen"])
    assert {user for user, _password in seen} == {"shop_app_a", "shop_app_b"}
    assert ("shop_app_a", first_password) in seen
    assert "password authentication failed" in refused(logged, "shop_app_a", first_password)
    assert logged.psql("SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = 'shop_app_a'").strip() == "f|t"
    log, statements = server_record(logged)
    audit = open(os.path.join(config["log_dir"], "audit.jsonl"), "rb").read()
    for _user, password in seen:
        secret = password.encode()
        assert len(password) >= 32
        assert secret not in log and secret not in statements and secret not in audit
        assert not any(secret in argv for argv in sampler.samples)
    for verifier in verifiers:
        assert verifier.encode() not in log and verifier.encode() not in statements
    assert not [line for line in log.splitlines() if b"shop_app" in line and b"SCRAM-SHA-256" in line]
    assert b"ALTER ROLE \"shop_app_a\" NOLOGIN PASSWORD NULL" in log  # the log did record the other statements
    assert b"connection authorized: user=shop_app_b" in log  # while log_connections saw the new login


def backup_user(cluster, root, name):
    """A login that backs up database ``name`` through a passfile, as role agent sets it up."""
    password = "Old-Backup-Password-%s-0123456789" % name
    cluster.psql("CREATE DATABASE %s" % name)
    cluster.psql("CREATE TABLE payments (id int, amount int); INSERT INTO payments SELECT g, g FROM generate_series(1, 5000) g",
                 db=name)
    cluster.psql("CREATE ROLE %s_backup LOGIN PASSWORD '%s' IN ROLE pg_read_all_data" % (name, password))
    passfile = root / ("%s.pgpass" % name)
    passfile.write_text("*:*:*:%s_backup:%s\n" % (name, password))
    passfile.chmod(0o600)
    profiles = {"daily": {"db": name}}
    host_config = root / ("%s.yml" % name)
    host_config.write_text(json.dumps({
        "connection": {"login_host": "127.0.0.1", "login_port": cluster.port, "login_user": "%s_backup" % name,
                       "passfile": str(passfile)},
        "backup_root": str(root / "backups"), "encryption": {"mode": "none"}, "profiles": profiles}))
    host_config.chmod(0o600)
    return password, str(passfile), str(host_config), profiles


def waits_at_gate(pid):
    """True while process ``pid`` has a profile's credential gate open (a backup waiting for the switch)."""
    try:
        return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)).endswith(".credential.lock") for fd in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return False


def test_in_place_rotation_of_the_backup_user_makes_a_backup_started_meanwhile_wait_and_succeed(engine, logged, root,
                                                                                                monkeypatch):
    old, passfile, host_config, profiles = backup_user(logged, root, "inplace")
    config = config_for(engine, logged, root, profiles=profiles)
    testing, original = threading.Event(), engine.rotate._Rotation._test
    profile_dir = root / "backups" / "daily"
    seen = {}

    def slow_test(self, login, password):  # the password is already changed and the passfile written: the window
        testing.set()
        deadline = time.time() + 120
        while not ("backup" in seen and waits_at_gate(seen["backup"].pid)) and time.time() < deadline:
            time.sleep(0.05)
        seen["waited"] = waits_at_gate(seen["backup"].pid)
        time.sleep(0.5)
        seen["during"] = sorted(os.listdir(profile_dir))  # no <id>.partial: it has not started
        return original(self, login, password)

    monkeypatch.setattr(engine.rotate._Rotation, "_test", slow_test)
    outcome = {}
    rotation = threading.Thread(target=lambda: outcome.update(engine.rotate.rotate(
        config, role="inplace_backup", strategy="in_place", db="inplace", profiles=["daily"],
        consumers=[{"type": "passfile", "path": passfile}])))
    rotation.start()
    assert testing.wait(120)  # the rotation holds the gate: start the scheduled backup now
    seen["backup"] = backup = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", host_config, "--json", "backup", "--profile",
         "daily"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rotation.join(240)
    out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, err
    assert seen["waited"] and seen["during"] == [".credential.lock", ".lock"]
    assert outcome["rotated"] and outcome["active_login"] == "inplace_backup" and outcome["retired_login"] is None
    assert "backup probe of profile daily (1 tables read)" in outcome["tests"]
    assert json.loads(out.splitlines()[-1])["ok"]
    assert refused(logged, "inplace_backup", old)
    new = open(passfile).read().split(":")[-1].strip()
    assert new != old and len(new) >= 32 and login(logged, "inplace_backup", new) == "inplace_backup"
    assert os.stat(passfile).st_mode & 0o777 == 0o600


def test_a_failing_test_leaves_the_old_credential_working_and_fails(engine, logged, root):
    """alternate: the new login lacks a privilege; in_place: the backup user cannot read a table of its profile."""
    make_app(logged, "tickets")
    logged.psql("CREATE TABLE secrets (id int)", db="tickets")
    env = str(root / "tickets.env")
    config = config_for(engine, logged, root)
    engine.rotate.rotate(config, role="tickets", db="tickets", consumers=[{"type": "env", "path": env}], grace="0s")
    before = open(env).read()
    with pytest.raises(engine.errors.DatabaseError) as failure:
        engine.rotate.rotate(config, role="tickets", db="tickets", consumers=[{"type": "env", "path": env}], force=True,
                             tests=["has_table_privilege('secrets', 'SELECT')"])
    assert "Failed to rotate the password of role tickets" in str(failure.value)
    assert "has_table_privilege('secrets', 'SELECT')" in str(failure.value) and "is false" in str(failure.value)
    assert open(env).read() == before
    assert login(logged, *env_credential(env), db="tickets") == "tickets_a"
    assert logged.psql("SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = 'tickets_b'").strip() == "f|t"

    old, passfile, _host_config, profiles = backup_user(logged, root, "locked")
    logged.psql("CREATE TABLE vault (id int); REVOKE ALL ON vault FROM PUBLIC", db="locked")
    logged.psql("REVOKE pg_read_all_data FROM locked_backup")
    logged.psql("GRANT SELECT ON payments TO locked_backup", db="locked")
    verifier = verifier_of(logged, "locked_backup")
    config = config_for(engine, logged, root, profiles=profiles)
    with pytest.raises(engine.errors.DatabaseError) as failure:
        engine.rotate.rotate(config, role="locked_backup", strategy="in_place", db="locked", profiles=["daily"],
                             consumers=[{"type": "passfile", "path": passfile}])
    assert "cannot read table public.vault of database locked" in str(failure.value)
    assert verifier_of(logged, "locked_backup") == verifier
    assert open(passfile).read() == "*:*:*:locked_backup:%s\n" % old
    assert login(logged, "locked_backup", old) == "locked_backup"
    audit = [json.loads(line) for line in open(os.path.join(config["log_dir"], "audit.jsonl"))]
    assert audit[-1]["action"] == "rotate" and audit[-1]["result"] == "failed" and "vault" in audit[-1]["error"]
    assert old not in open(os.path.join(config["log_dir"], "audit.jsonl")).read()


def test_check_mode_rerun_and_force(engine, logged, root):
    make_app(logged, "ledger")
    env = str(root / "ledger.env")
    options = dict(role="ledger", db="ledger", consumers=[{"type": "env", "path": env}], grace="0s")
    config = config_for(engine, logged, root)
    predicted = engine.rotate.rotate(config, check_mode=True, **options)
    assert predicted["changed"] and predicted["due"] and not predicted["rotated"]
    assert predicted["active_login"] == "ledger_a" and not os.path.exists(env)
    assert not logged.psql("SELECT 1 FROM pg_roles WHERE rolname = 'ledger_a'").strip()
    first = engine.rotate.rotate(config, **options)
    assert first["changed"] and first["rotated"]
    content, verifier = open(env).read(), verifier_of(logged, "ledger_a")
    rerun = engine.rotate.rotate(config, **options)
    assert not rerun["changed"] and not rerun["rotated"] and rerun["active_login"] == "ledger_a"
    assert rerun["next_due"] == first["next_due"] and rerun["rotated_at"] == first["rotated_at"]
    checked = engine.rotate.rotate(config, check_mode=True, force=True, **options)
    assert checked["changed"] and checked["active_login"] == "ledger_b" and checked["would_retire"] == "ledger_a"
    assert open(env).read() == content and verifier_of(logged, "ledger_a") == verifier
    assert not engine.rotate.rotate(config, check_mode=True, **options)["changed"]
    forced = engine.rotate.rotate(config, force=True, **options)
    assert forced["rotated"] and forced["active_login"] == "ledger_b" and forced["retired_login"] == "ledger_a"
    assert open(env).read() != content
    assert engine.rotate.rotate(config, max_age="0s", **options)["rotated"]  # older than max_age: due again
    metrics = open(os.path.join(config["metrics_dir"], "lifeboat_credential_ledger.prom")).read()
    assert 'lifeboat_credential_last_rotation_timestamp_seconds{role="ledger"}' in metrics
    assert 'lifeboat_credential_age_seconds{role="ledger"}' in metrics
    assert env_credential(env)[1] not in metrics


def test_revoke_disables_every_login_at_once_and_ends_their_sessions(engine, logged, root):
    make_app(logged, "crm")
    env = str(root / "crm.env")
    options = dict(role="crm", db="crm", consumers=[{"type": "env", "path": env}], grace="1h")
    config = config_for(engine, logged, root)
    engine.rotate.rotate(config, **options)
    engine.rotate.rotate(config, force=True, **options)  # crm_a waits out its grace, crm_b is active
    user, password = env_credential(env)
    session = psycopg2.connect(host="127.0.0.1", port=logged.port, user=user, password=password, dbname="crm")
    result = engine.rotate.rotate(config, revoke=True, **options)
    assert result["rotated"] and result["active_login"] == "crm_a" and result["retired_login"] == "crm_b"
    assert result["pending_retirement"] == []
    assert any("1 sessions terminated" in w for w in result["warnings"])
    assert refused(logged, user, password)
    with pytest.raises(psycopg2.Error):
        session.cursor().execute("SELECT 1")
    assert login(logged, *env_credential(env), db="crm") == "crm_a"


def test_the_backup_user_rotates_its_own_password_from_the_cli(logged, root):
    """No controller: ``lifeboat rotate-password`` as the backup user itself, its passfile the consumer; rerun, dry run."""
    old, passfile, host_config, _profiles = backup_user(logged, root, "selfrot")
    proc = lifeboat("--config", host_config, "--json", "rotate-password", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    predicted = json.loads(proc.stdout)
    assert predicted["due"] and predicted["changed"] and not predicted["rotated"]
    assert open(passfile).read() == "*:*:*:selfrot_backup:%s\n" % old
    proc = lifeboat("--config", host_config, "rotate-password")
    assert proc.returncode == 0, proc.stderr
    assert "rotated the password of selfrot_backup (in_place)" in proc.stdout
    assert "backup probe of profile daily" in proc.stdout
    assert "may not set log_statement" in proc.stdout  # not a superuser: said, not hidden
    assert refused(logged, "selfrot_backup", old)
    new = open(passfile).read().split(":")[-1].strip()
    assert new not in proc.stdout + proc.stderr
    assert login(logged, "selfrot_backup", new) == "selfrot_backup"
    log, statements = server_record(logged)  # not a superuser: the verifier may be on record, the password never
    assert new.encode() not in log and new.encode() not in statements
    assert verifier_of(logged, "selfrot_backup").encode() in log  # what a non-superuser cannot hide, said above
    again = lifeboat("--config", host_config, "--json", "rotate-password")
    assert again.returncode == 0 and not json.loads(again.stdout)["changed"]
    backup = lifeboat("--config", host_config, "backup", "--profile", "daily")
    assert backup.returncode == 0, backup.stderr


def lifeboat(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "lifeboat")] + list(args), capture_output=True,
                          text=True, timeout=300, check=False)


def test_module_and_playbook_rotate_with_nothing_secret_in_vvv_output(engine, logged, root, module):
    """The module (check mode, run, rerun) and playbook rotate_credentials at -vvv: neither password nor verifier shows."""
    from conftest import VENV_BIN, ansible_env

    make_app(logged, "billing")
    env = str(root / "billing.env")
    args = dict(logged.connection(), role="billing", db="billing", grace="0s", backup_root=str(root / "backups"),
                consumers=[{"type": "env", "path": env, "mode": "0600"}], test=["has_table_privilege('orders', 'SELECT')"])
    checked = module("rotate_password", args, check=True)
    assert not checked.failed and checked.changed and checked["due"] and not os.path.exists(env), checked.result
    first = module("rotate_password", args, verbosity=3)
    assert not first.failed and first.changed and first["rotated"] and first["active_login"] == "billing_a", first.result
    secrets_seen = [env_credential(env)[1], verifier_of(logged, "billing_a")]
    rerun = module("rotate_password", args)
    assert not rerun.failed and not rerun.changed and rerun["next_due"] == first["next_due"]

    extra = root / "extra.json"
    extra.write_text(json.dumps({"rotate_credentials_hosts": "localhost", "rotate_credentials_admin": logged.connection(),
                                 "agent_backup_root": str(root / "backups"), "agent_log_dir": str(root / "log"),
                                 "agent_metrics_dir": str(root / "metrics"), "rotate_credentials_force": True,
                                 "rotate_credentials_roles": [{k: args[k] for k in ("role", "db", "grace", "consumers", "test")}]}))
    extra.chmod(0o600)
    missing = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "rotate_credentials.yml"),
                              "-i", os.path.join(REPO, "inventories", "local")], capture_output=True, text=True, timeout=300,
                             env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"), check=False)
    assert missing.returncode != 0 and "rotate_credentials_hosts" in missing.stdout + missing.stderr
    play = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "rotate_credentials.yml"),
                           "-i", os.path.join(REPO, "inventories", "local"), "-e", "@" + str(extra), "-vvv"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    assert play.returncode == 0, play.stdout[-3000:] + play.stderr[-2000:]
    assert "billing: active billing_b, rotated True" in play.stdout, play.stdout[-2000:]
    secrets_seen += [env_credential(env)[1], verifier_of(logged, "billing_b")]
    output = first.proc.stdout + first.proc.stderr + play.stdout + play.stderr
    for secret in secrets_seen + [logged.password]:
        assert secret not in output
    assert login(logged, *env_credential(env), db="billing") == "billing_b"

    # A role whose new login fails its test: every step is still tried, then the host fails naming the role.
    failing = dict(json.loads(extra.read_text()), rotate_credentials_roles=[
        {k: args[k] for k in ("role", "db", "grace", "consumers")} | {"test": ["has_table_privilege('orders', 'DELETE')"]}])
    extra.write_text(json.dumps(failing))
    denied = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "rotate_credentials.yml"),
                             "-i", os.path.join(REPO, "inventories", "local"), "-e", "@" + str(extra)],
                            capture_output=True, text=True, timeout=300, check=False,
                            env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    assert denied.returncode != 0
    assert "Credential rotation failed on localhost for billing (the report above says what failed" in denied.stdout, \
        denied.stdout[-3000:]
    assert login(logged, *env_credential(env), db="billing") == "billing_b"


def test_a_failed_rotation_posts_the_webhook_without_any_secret(engine, logged, root, receiver):
    make_app(logged, "alerts")
    env = str(root / "alerts.env")
    # The configuration's dead-man's switch watches the backups: a failed rotation must not ping it.
    config = config_for(engine, logged, root, notify={"webhook_url": receiver.url("ok", "hook"),
                                                      "deadman_url": receiver.url("ok", "deadman")})
    with pytest.raises(engine.errors.DatabaseError):
        engine.rotate.rotate(config, role="alerts", db="alerts", consumers=[{"type": "env", "path": env}],
                             tests=["has_table_privilege('orders', 'INSERT')"])
    assert [path for path in receiver.paths() if path.startswith("/ok/deadman")] == []
    (hook,) = receiver.to("/ok/hook")
    body = json.loads(hook["body"])
    assert body["status"] == "failure" and "rotate-password:alerts" in body["summary"]
    assert "Failed to rotate the password of role alerts" in body["error"] and "INSERT" in body["error"]
    assert logged.password not in hook["body"] and not os.path.exists(env)


class ConsumerWatcher(threading.Thread):
    """Reads an env consumer over and over: every credential it held while a rotation ran (the new one is written
    before it is tested, and put back when the test fails)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.seen = set()
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.seen.add(env_credential(self.path))
            except (OSError, KeyError):
                pass
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.join(10)


def test_a_failed_rotation_through_the_module_posts_one_webhook_without_a_secret(engine, logged, root, module, receiver):
    """Ansible runs rotate_password with webhook_url and a test SQL the new login cannot pass: the module fails saying
    so, the old credential stays, and the receiver gets exactly one failure post naming the role that holds neither
    password nor the URL's token. A check-mode run that fails posts nothing."""
    make_app(logged, "pager")
    env = str(root / "pager.env")
    consumers = [{"type": "env", "path": env}]
    engine.rotate.rotate(config_for(engine, logged, root), role="pager", db="pager", consumers=consumers, grace="0s")
    old = env_credential(env)
    token = "T0ken%s" % os.urandom(12).hex()
    # The first check sleeps while the env file holds the new credential, so the watcher surely reads it there.
    args = dict(logged.connection(), role="pager", db="pager", backup_root=str(root / "backups"), consumers=consumers,
                force=True, test=["(SELECT true FROM pg_sleep(1))", "has_table_privilege('orders', 'INSERT')"],
                webhook_url=receiver.url("ok", token), webhook_format="json")
    watcher = ConsumerWatcher(env)
    watcher.start()
    try:
        failed = module("rotate_password", args)
    finally:
        watcher.stop()
    assert failed.failed, failed.result
    assert failed["msg"].startswith("Failed to rotate the password of role pager: ")
    assert "test \"has_table_privilege('orders', 'INSERT')\" is false for pager_b" in failed["msg"]
    (new,) = [password for user, password in watcher.seen if (user, password) != old]
    assert len(new) == 43 and refused(logged, "pager_b", new)
    assert env_credential(env) == old and login(logged, *old, db="pager") == "pager_a"  # the old credential in force

    assert receiver.paths() == ["/ok/%s" % token]
    body = json.loads(receiver.requests[0]["body"])
    assert body["status"] == "failure" and body["profile"] == "rotate-password:pager" and body["step"] == "rotate"
    assert body["error"] == failed["msg"]
    output = failed.proc.stdout + failed.proc.stderr
    for secret in (new, old[1], token, logged.password):
        assert secret not in receiver.requests[0]["body"]
        assert secret not in output  # webhook_url is no_log

    checked = module("rotate_password", dict(args, db="pager_missing"), check=True)
    assert checked.failed and 'database "pager_missing" does not exist' in checked["msg"], checked.result
    assert len(receiver.requests) == 1  # check mode posts nothing, even when it fails


def test_with_profiles_and_no_webhook_url_the_module_posts_the_host_configurations_webhook(logged, root, module, receiver):
    """The backup user's rotation reads the host's lifeboat.yml for its profiles; without webhook_url its notify
    webhook is posted to, in its format, and its dead-man's switch (it watches the backups) is left alone."""
    old, passfile, host_config, _profiles = backup_user(logged, root, "hooked")
    with open(host_config) as handle:
        data = json.load(handle)
    data["notify"] = {"webhook_url": receiver.url("ok", "host-hook"), "webhook_format": "slack",
                      "deadman_url": receiver.url("ok", "deadman")}
    with open(host_config, "w") as handle:
        json.dump(data, handle)
    failed = module("rotate_password", dict(
        logged.connection(), role="hooked_backup", strategy="in_place", db="hooked", profiles=["daily"],
        lifeboat_config=host_config, consumers=[{"type": "passfile", "path": passfile}],
        test=["has_table_privilege('payments', 'DELETE')"]))
    assert failed.failed and "is false for hooked_backup" in failed["msg"], failed.result
    assert receiver.paths() == ["/ok/host-hook"]
    text = json.loads(receiver.requests[0]["body"])["text"]
    assert "rotate-password:hooked_backup" in text and "FAILED" in text and old not in text
    assert login(logged, "hooked_backup", old) == "hooked_backup"


def test_a_second_rotation_on_the_host_stops_at_once(engine, logged, root):
    make_app(logged, "queue")
    config = config_for(engine, logged, root)
    state_dir = str(root / "state")
    os.makedirs(state_dir, mode=0o700)
    with engine.storage.ProfileLock(state_dir, "credential-rotation"):
        with pytest.raises(engine.errors.LockError, match="another credential rotation is running on this host"):
            engine.rotate.rotate(config, role="queue", db="queue", state_dir=state_dir)
    assert not logged.psql("SELECT 1 FROM pg_roles WHERE rolname = 'queue_a'").strip()
    assert engine.rotate.rotate(config, role="queue", db="queue", state_dir=state_dir)["rotated"]


def test_rotate_credentials_through_ansible_runner_as_an_awx_schedule_runs_it(logged, root):
    """The private data directory AWX hands to ansible-runner; what AWX keeps of the job holds no secret."""
    import glob
    import shutil

    import yaml
    from conftest import VENV_BIN

    make_app(logged, "awx_app")
    env = str(root / "awx_app.env")
    private = root / "runner"
    (private / "env").mkdir(parents=True)
    extravars = private / "env" / "extravars"
    extravars.write_text(json.dumps({
        "rotate_credentials_hosts": "lifeboat_hosts", "rotate_credentials_admin": logged.connection(),
        "agent_backup_root": str(root / "backups"), "agent_log_dir": str(root / "log"),
        "agent_metrics_dir": str(root / "metrics"),
        "rotate_credentials_roles": [{"role": "awx_app", "db": "awx_app", "grace": "0s",
                                      "consumers": [{"type": "env", "path": env}]}]}))
    extravars.chmod(0o600)
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".build", "collections"), "ANSIBLE_LOCALHOST_WARNING": "0"}))
    shutil.copytree(os.path.join(REPO, "inventories", "local"), private / "inventory")
    shutil.copytree(os.path.join(REPO, "playbooks"), private / "project" / "playbooks")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-runner"), "run", str(private), "-p",
                           "playbooks/rotate_credentials.yml", "--ident", "rotate"], capture_output=True, text=True,
                          timeout=600, check=False, env=dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"]))
    artifacts = private / "artifacts" / "rotate"
    assert (artifacts / "status").read_text() == "successful", proc.stdout[-3000:] + proc.stderr[-2000:]
    user, password = env_credential(env)
    assert user == "awx_app_a" and login(logged, user, password, db="awx_app") == "awx_app_a"
    verifier = verifier_of(logged, "awx_app_a")
    for path in [artifacts / "stdout"] + glob.glob(str(artifacts / "job_events" / "*.json")):
        with open(path) as handle:
            text = handle.read()
        assert password not in text and verifier not in text and logged.password not in text, path
