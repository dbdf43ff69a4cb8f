"""What users install: ansible-galaxy builds a tarball that installs and runs on its own, without this checkout."""

import json
import os
import subprocess
import tarfile

import pytest
from conftest import REPO, VENV_BIN, ansible_env


def galaxy(*args, cwd=REPO):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy")] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the collection and install the tarball into an empty collections path."""
    base = tmp_path_factory.mktemp("galaxy")
    galaxy("collection", "build", "--output-path", str(base))
    (tarball,) = base.glob("lifeboat-backup-*.tar.gz")
    collections = base / "collections"
    # --force: a copy installed elsewhere (e.g. by molecule in ~/.ansible/collections) must not make this a no-op
    galaxy("collection", "install", "--force", str(tarball), "-p", str(collections))
    return tarball, collections


def only_installed_copy(collections, **extra):
    """An environment that can find lifeboat.backup only in ``collections`` (sys.path holds the ansible package's
    collections, for the json callback, never this checkout)."""
    return ansible_env(ANSIBLE_COLLECTIONS_PATH=str(collections), **extra)


def test_tarball_holds_the_collection_and_no_development_files(installed):
    tarball = installed[0]
    with tarfile.open(str(tarball)) as archive:
        names = set(archive.getnames())
    for expected in ("MANIFEST.json", "README.md", "CHANGELOG.md", "meta/runtime.yml", "bin/lifeboat",
                     "plugins/modules/dump.py", "plugins/modules/verify.py", "plugins/modules/restore.py",
                     "plugins/modules/catalog_info.py", "plugins/module_utils/_actions/backup.py",
                     "plugins/doc_fragments/connection.py", "playbooks/daily_backup.yml",
                     "playbooks/tasks/daily_backup_profile.yml", "inventories/local/hosts.yml"):
        assert expected in names, expected
    for name in names:
        top = name.split("/")[0]
        assert top not in (".venv", ".build", ".git", ".ci", "scripts", "bench-results", ".pytest_cache", ".ruff_cache"), name
        assert "__pycache__" not in name and not name.endswith((".pyc", ".tar.gz")), name
    manifest = json.loads(tarfile.open(str(tarball)).extractfile("MANIFEST.json").read())
    assert manifest["collection_info"]["namespace"] == "lifeboat"
    assert manifest["collection_info"]["name"] == "backup"


def test_installed_modules_run_and_document_themselves(installed, pg, shop_db, tmp_path):
    collections = installed[1]
    root = collections / "ansible_collections" / "lifeboat" / "backup"
    doc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "--json", "lifeboat.backup.dump"], capture_output=True, text=True,
                         env=only_installed_copy(collections), timeout=120, check=False)
    assert doc.returncode == 0, doc.stderr
    info = json.loads(doc.stdout)["lifeboat.backup.dump"]["doc"]
    assert info["filename"].startswith(str(root)), info["filename"]
    assert "login_password" in info["options"]

    backup_root = str(tmp_path / "backups")
    args = dict(pg.connection(), db=shop_db, profile="installed", backup_root=backup_root, encryption="none", verify="archive")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-c", "local", "-m", "lifeboat.backup.dump", "-a", json.dumps(args)],
                          capture_output=True, text=True, env=only_installed_copy(collections), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout[proc.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] and result["backup"]["verification"]["verified"], result
    assert os.path.isfile(os.path.join(result["backup"]["path"], "manifest.json"))


def test_installed_playbook_runs_by_its_collection_name(installed, pg, shop_db, age_key, tmp_path):
    collections = installed[1]
    vars_file = tmp_path / "vars.json"
    fd = os.open(str(vars_file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"agent_connection": pg.connection(), "agent_backup_root": str(tmp_path / "backups"),
                   "agent_log_dir": str(tmp_path / "log"), "agent_metrics_dir": str(tmp_path / "metrics"),
                   "agent_recipients": [age_key[1]], "agent_profiles": {"full": {"db": shop_db}}}, handle)
    inventory = collections / "ansible_collections" / "lifeboat" / "backup" / "inventories" / "local"
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "lifeboat.backup.daily_backup", "-i", str(inventory),
                           "-e", "@%s" % vars_file], capture_output=True, text=True, timeout=300, check=False,
                          env=only_installed_copy(collections, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "full: backup " in proc.stdout and "verified (archive)" in proc.stdout
