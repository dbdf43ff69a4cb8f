"""Root on a host whose backups belong to the backup user: refused before anything is written, naming the command.

The backup user is the real OS user ``nobody`` (setpriv), owning the backup root, the log and the metrics
directories, as the agent role leaves them for its user. Root can write anywhere, so nothing but lifeboat itself
stops it; what it wrote there (a backup, the audit log) the backup user could then neither replace nor prune.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=%d" % NOBODY.pw_gid, "--clear-groups", "--"]


@pytest.fixture
def host(pg, age_key, shop_db, tmp_path):
    """/var/tmp/lifeboat-owner-*/ (0755 root): backups/ with one backup, log/ and metrics/, all nobody's."""
    base = tempfile.mkdtemp(prefix="lifeboat-owner-", dir="/var/tmp")
    os.chmod(base, 0o755)
    config = {"connection": pg.connection(), "backup_root": os.path.join(base, "backups"),
              "log_dir": os.path.join(base, "log"), "metrics_dir": os.path.join(base, "metrics"),
              "encryption": {"mode": "age", "recipients": [age_key[1]]},
              "profiles": {"shop": {"db": shop_db, "tables": ["users"], "globals": False, "retention": {"keep_last": 1}}}}
    path = os.path.join(base, "lifeboat.yml")
    with open(path, "w") as handle:  # the backup taken by the backup user earlier (made here by root, then handed over)
        json.dump(dict(config, log_dir=str(tmp_path / "stage-log"), metrics_dir=str(tmp_path / "stage-metrics")), handle)
    made = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", path, "--json", "backup",
                           "--profile", "shop"], capture_output=True, text=True, timeout=300, check=True)
    with open(path, "w") as handle:
        json.dump(config, handle)
    for name in ("log", "metrics"):
        os.mkdir(os.path.join(base, name), 0o700)
    for top, dirs, files in os.walk(base):
        for name in [top] + [os.path.join(top, n) for n in dirs + files]:
            if name != base:
                os.lchown(name, NOBODY.pw_uid, NOBODY.pw_gid)
    yield base, path, json.loads(made.stdout)["id"]
    shutil.rmtree(base, ignore_errors=True)


def lifeboat(path, *args, user=None):
    argv = (AS_NOBODY if user == "nobody" else []) + [sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", path]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=300, check=False, cwd="/")


def owned_by_root(base):
    found = []
    for top, dirs, files in os.walk(base):
        found += [n for n in [top] + [os.path.join(top, f) for f in dirs + files] if n != base and os.lstat(n).st_uid == 0]
    return found


def test_root_is_refused_with_the_command_to_use_and_leaves_nothing_behind(host, module):
    base, path, backup_id = host
    for args in (["backup", "--profile", "shop"], ["hold", "--profile", "shop", "--id", backup_id, "--reason", "audit"],
                 ["prune", "--profile", "shop"]):
        proc = lifeboat(path, *args)
        command = "lifeboat --config %s %s" % (path, " ".join(args))
        assert proc.returncode == 8, proc.stderr
        assert "%s belongs to nobody, but lifeboat runs as root" % os.path.join(base, "backups") in proc.stderr, proc.stderr
        assert proc.stderr.strip().endswith("run it as nobody: runuser -u nobody -- %s (or sudo -u nobody %s)"
                                            % (command, command)), proc.stderr
        assert owned_by_root(base) == []  # before the fix: log/audit.jsonl (and the audit trail lost for nobody)
    assert sorted(os.listdir(os.path.join(base, "backups", "shop"))) == [".credential.lock", ".lock", backup_id]
    assert os.listdir(os.path.join(base, "log")) == [] and os.listdir(os.path.join(base, "metrics")) == []

    refused = module("prune", dict(backup_root=os.path.join(base, "backups"), log_dir=os.path.join(base, "log"),
                                   metrics_dir=os.path.join(base, "metrics"), profile="shop", retention={"keep_last": 1}))
    assert refused.failed and "run it as nobody: become: true and become_user: nobody on the task" in refused["msg"]
    assert owned_by_root(base) == []

    # The backup user's own runs find every backup intact and can write their audit trail.
    plan = lifeboat(path, "--json", "prune", "--profile", "shop", "--dry-run", user="nobody")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["skipped"] == [] and json.loads(plan.stdout)["kept"] == [backup_id]
    held = lifeboat(path, "hold", "--profile", "shop", "--id", backup_id, "--reason", "audit", user="nobody")
    assert held.returncode == 0, held.stderr
    assert os.stat(os.path.join(base, "log", "audit.jsonl")).st_uid == NOBODY.pw_uid
    assert owned_by_root(base) == []
    # Read-only commands stay open to root.
    assert lifeboat(path, "list").returncode == 0
    assert lifeboat(path, "prune", "--profile", "shop", "--dry-run").returncode == 0
