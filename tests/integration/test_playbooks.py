"""playbooks/daily_backup.yml on inventories/local against the real cluster: check mode, a real run, the backups
it leaves, a failing profile, a long-lived identity, and the same playbook through ansible-runner as AWX runs it."""

import glob
import json
import os
import shutil
import subprocess

import yaml
from conftest import REPO, VENV_BIN, Engine, ansible_env

PLAYBOOK = os.path.join(REPO, "playbooks", "daily_backup.yml")
INVENTORY = os.path.join(REPO, "inventories", "local")


def settings(pg, age_key, root, profiles):
    """Inventory variables in the shared agent_* contract, for this test's cluster and key."""
    return {
        "agent_connection": pg.connection(),
        "agent_backup_root": os.path.join(root, "backups"),
        "agent_log_dir": os.path.join(root, "log"),
        "agent_metrics_dir": os.path.join(root, "metrics"),
        "agent_encryption_mode": "age",
        "agent_recipients": [age_key[1]],
        "agent_profiles": profiles,
    }


def write_vars(path, data):
    """Extra vars in a 0600 file: the password stays off the command line."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return str(path)


def run_playbook(vars_file, *args):
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-i", INVENTORY, "-e", "@" + vars_file] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))


def complete_backups(root, profile):
    return [e for e in Engine().catalog.scan(root, profile) if e.status == "complete"]


def shop_profiles(db):
    return {
        "payments": {"db": db, "tables": ["public.payments"], "freshness_columns": {"public.payments": "created_at"}},
        "full": {"db": db},
    }


def test_daily_backup_check_mode_then_real_run(pg, shop_db, age_key, tmp_path):
    data = settings(pg, age_key, str(tmp_path), shop_profiles(shop_db))
    vars_file = write_vars(tmp_path / "vars.json", data)

    planned = run_playbook(vars_file, "--check")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "payments: would back up 1 tables of database %s" % shop_db in planned.stdout
    assert not os.path.exists(data["agent_backup_root"])

    done = run_playbook(vars_file, "-vvv")
    assert done.returncode == 0, done.stdout + done.stderr
    password = pg.password
    assert password not in done.stdout and password not in done.stderr
    for name, tables in (("payments", {"public.payments"}), ("full", {"public.orders", "public.payments", "public.tickets", "public.users"})):
        backups = complete_backups(data["agent_backup_root"], name)
        assert len(backups) == 1, name
        manifest = backups[0].manifest
        assert {"%s.%s" % (t["schema"], t["name"]) for t in manifest["tables"] if t["rows"]} == tables
        for table in manifest["tables"]:
            if table["name"] in {t.split(".")[1] for t in tables}:
                assert table["rows"] == int(pg.psql("SELECT count(*) FROM %s" % table["name"], db=shop_db))
        verification = backups[0].verification
        assert verification["ok"] and "archive" in verification["passed"], verification
        assert "%s: backup %s" % (name, backups[0].id) in done.stdout
    with open(os.path.join(data["agent_log_dir"], "audit.jsonl")) as handle:
        audit = [json.loads(line) for line in handle]
    assert [(a["action"], a["result"]) for a in audit].count(("backup", "ok")) == 2
    assert password not in json.dumps(audit)


def test_failed_profile_fails_the_host_and_the_others_still_run(pg, shop_db, age_key, tmp_path):
    profiles = shop_profiles(shop_db)
    profiles["ghost"] = {"db": "no_such_database"}
    data = settings(pg, age_key, str(tmp_path), profiles)
    result = run_playbook(write_vars(tmp_path / "vars.json", data))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Daily backup failed on localhost for profile ghost" in result.stdout
    assert "no_such_database" in result.stdout and "does not exist" in result.stdout
    assert "failed=1" in result.stdout
    for name in ("payments", "full"):
        assert len(complete_backups(data["agent_backup_root"], name)) == 1
    assert not complete_backups(data["agent_backup_root"], "ghost")
    assert pg.password not in result.stdout


def test_profile_without_database_is_refused_before_any_dump(pg, shop_db, age_key, tmp_path):
    data = settings(pg, age_key, str(tmp_path), {"full": {"db": shop_db}, "broken": {"tables": ["x"]}})
    result = run_playbook(write_vars(tmp_path / "vars.json", data))
    assert result.returncode == 2
    assert "profiles without db: broken" in result.stdout
    assert not os.path.exists(data["agent_backup_root"])


def test_long_lived_identity_verifies_through_the_verify_module(pg, shop_db, age_key, tmp_path):
    data = settings(pg, age_key, str(tmp_path), {"full": {"db": shop_db}})
    data["daily_backup_identity_file"] = age_key[0]
    result = run_playbook(write_vars(tmp_path / "vars.json", data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TASK [Back up, verify, push and prune profile full]" in result.stdout
    (backup,) = complete_backups(data["agent_backup_root"], "full")
    assert "archive" in backup.verification["passed"]
    # No one-time recipient: only the configured key can open this backup.
    assert all("one_time_recipient" not in a for a in backup.manifest["artifacts"])


def test_daily_backup_through_ansible_runner(pg, shop_db, age_key, tmp_path):
    """The private data directory layout AWX hands to ansible-runner: env/, inventory/, project/."""
    private = tmp_path / "runner"
    data = settings(pg, age_key, str(tmp_path), shop_profiles(shop_db))
    (private / "env").mkdir(parents=True)
    write_vars(private / "env" / "extravars", data)
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".build", "collections"),
        "ANSIBLE_LOCALHOST_WARNING": "0",
    }))
    shutil.copytree(INVENTORY, private / "inventory")
    shutil.copytree(os.path.join(REPO, "playbooks"), private / "project" / "playbooks")

    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-runner"), "run", str(private), "-p", "playbooks/daily_backup.yml",
                           "--ident", "daily"], capture_output=True, text=True, timeout=600, env=env, check=False)
    artifacts = private / "artifacts" / "daily"
    assert (artifacts / "status").read_text() == "successful", proc.stdout + proc.stderr
    assert (artifacts / "rc").read_text() == "0"
    for name in ("payments", "full"):
        (backup,) = complete_backups(data["agent_backup_root"], name)
        assert "archive" in backup.verification["passed"]

    # What AWX stores of the job (stdout, events) never holds the password.
    events = [json.load(open(path)) for path in glob.glob(str(artifacts / "job_events" / "*.json"))]
    assert any(e.get("event") == "playbook_on_stats" for e in events)
    for path in [artifacts / "stdout"] + glob.glob(str(artifacts / "job_events" / "*.json")):
        with open(path) as handle:
            assert pg.password not in handle.read(), path


def test_daily_backup_ships_and_prunes_like_the_scheduled_run(pg, shop_db, age_key, tmp_path):
    """AWX-only hosts: without push and prune the backups grew without limit. The playbook now runs the same engine
    action as `lifeboat run`: two runs with keep_last 1 leave one backup locally and one in the bucket."""
    from seaweed import SECRET_KEY, SeaweedFS

    server = SeaweedFS(str(tmp_path / "seaweed")).start()
    try:
        bucket = server.bucket()
        data = settings(pg, age_key, str(tmp_path), {"full": {"db": shop_db, "retention": {"keep_last": 1}}})
        data.update(agent_offsite=server.target(bucket), agent_host_name="db1")
        vars_file = write_vars(tmp_path / "vars.json", data)
        planned = run_playbook(vars_file, "--check")
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert "push offsite, prune, prune offsite" in planned.stdout
        assert not os.path.exists(data["agent_backup_root"]) and server.keys(bucket) == []
        for _run in range(2):
            done = run_playbook(vars_file, "-v")
            assert done.returncode == 0, done.stdout + done.stderr
            assert SECRET_KEY not in done.stdout and pg.password not in done.stdout
        (kept,) = complete_backups(data["agent_backup_root"], "full")
        assert "1 pushed offsite, pruned 1, pruned 1 offsite" in done.stdout
        assert {key.split("/")[3] for key in server.keys(bucket)} == {kept.id}
        with open(os.path.join(data["agent_log_dir"], "audit.jsonl")) as handle:
            actions = [(a["action"], a["result"], a["via"]) for a in map(json.loads, handle)]
        for action in ("backup", "verify", "push", "prune", "remote_prune", "run"):
            assert (action, "ok", "module") in actions, (action, actions)
        assert not glob.glob("/tmp/*.lifeboat-run.yml")  # the private copy of the configuration is gone
    finally:
        server.stop()
