"""Another local user under the backup root (issue 13 section 1) and a run killed at its commit point (section 2).

The attacker is the real OS user ``nobody``, working in a directory under /var/tmp it can reach. Where it plants
something in a profile directory, it does so while that directory is open to it; the test then closes the
directory again (as an operator fixing the mode would), so what is tested is what the engine does with what was
left behind, not the mode check (tested on its own below). Tests run as root, the engine in-process unless an exit
code or a kill -9 is the point.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
PRECIOUS = b"not lifeboat's to write\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")


def as_nobody(*argv):
    proc = subprocess.run(AS_NOBODY + list(argv), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, "as nobody %s: %s" % (argv, proc.stderr)


@pytest.fixture
def base():
    """/var/tmp/lifeboat-hostile-*/ (0755 root) with ``nobody/``, a directory of nobody's own."""
    path = tempfile.mkdtemp(prefix="lifeboat-hostile-", dir="/var/tmp")
    os.chmod(path, 0o755)
    own = os.path.join(path, "nobody")
    os.mkdir(own, 0o755)
    os.chown(own, NOBODY.pw_uid, NOBODY.pw_gid)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def backup_root(base):
    return os.path.join(base, "backups")


@pytest.fixture
def precious(base):
    """A file of root's that nobody would like root to overwrite."""
    path = os.path.join(base, "precious")
    with open(path, "wb") as handle:
        handle.write(PRECIOUS)
    return path


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def open_to_nobody(backup_root):
    """The root and the profile directory as they were before the mode check: nobody can write in shop/."""
    profile_dir = os.path.join(backup_root, "shop")
    os.makedirs(profile_dir, exist_ok=True)
    os.chmod(backup_root, 0o755)
    os.chmod(profile_dir, 0o777)
    return profile_dir


def tighten(backup_root):
    os.chmod(backup_root, 0o700)
    os.chmod(os.path.join(backup_root, "shop"), 0o700)


# -- 1. the profile lock ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("planted, message", [
    ("link", ".lock is a symbolic link, not the lock file lifeboat makes; lifeboat never follows it: remove it"),
    ("file", ".lock is not the lock file lifeboat makes (-rw-r--r--, owner nobody, 1 links; it must be a regular file of root)"),
])
def test_a_planted_lock_is_refused_never_followed(engine, make_config, shop_db, backup_root, precious, planted, message):
    profile_dir = open_to_nobody(backup_root)
    lock = os.path.join(profile_dir, ".lock")
    if planted == "link":
        as_nobody("ln", "-s", precious, lock)
    else:
        as_nobody("/usr/bin/python3", "-c", "import os, sys\nos.umask(0o022)\nopen(sys.argv[1], 'w').write('nobody\\n')", lock)
    tighten(backup_root)
    with pytest.raises(engine.errors.StorageError) as caught:
        engine.dump.backup(make_config({"shop": {"db": shop_db}}), "shop", via="test")
    assert message in str(caught.value)
    assert profile_dir in str(caught.value)
    assert read(precious) == PRECIOUS  # before the fix: truncated, then the pid written into it
    if planted == "file":
        assert read(lock) == b"nobody\n"
    assert engine.catalog.scan(backup_root, "shop") == []


# -- 2. a planted .partial, and a symlinked directory in the catalog ------------------------------------------------

def test_a_planted_partial_link_is_refused_even_when_its_target_appears(engine, make_config, shop_db, base, backup_root,
                                                                        monkeypatch):
    """nobody links every id of the next minutes to a directory of its own that does not exist yet (so the id
    looks free), and creates that directory once the run has chosen its id (the race, hit on purpose)."""
    profile_dir = open_to_nobody(backup_root)
    loot = os.path.join(base, "nobody", "loot")
    now = time.time()
    ids = [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + s)) for s in range(-5, 900)]
    as_nobody("/usr/bin/python3", "-c", "import os, sys\nfor i in sys.argv[3:]: os.symlink(sys.argv[1], os.path.join(sys.argv[2], i + '.partial'))",
              loot, profile_dir, *ids)
    tighten(backup_root)
    chosen = []
    original = engine.dump.new_backup_id

    def racing(profile, started):
        chosen.append(original(profile, started))
        as_nobody("mkdir", loot)
        return chosen[-1]

    monkeypatch.setattr(engine.dump, "new_backup_id", racing)
    with pytest.raises(engine.errors.StorageError) as caught:
        engine.dump.backup(make_config({"shop": {"db": shop_db}}), "shop", via="test")
    assert "is a symbolic link (to %s): lifeboat did not make it and never follows or reuses it; move it away" % loot in str(caught.value)
    assert os.listdir(loot) == []  # before the fix: the backup and its manifest, written by root into nobody's directory
    entries = engine.catalog.scan(backup_root, "shop")
    assert entries and {e.status for e in entries} == {engine.catalog.DAMAGED}
    assert engine.catalog.complete_backups(backup_root, "shop") == []


def test_another_users_entry_in_a_profile_directory_stops_the_run(engine, make_config, shop_db, backup_root):
    """A directory nobody made there (say, a backup look-alike with a manifest of its choosing) is named, not reused."""
    profile_dir = open_to_nobody(backup_root)
    planted = os.path.join(profile_dir, "20991231T235959Z")
    as_nobody("mkdir", planted)
    tighten(backup_root)
    with pytest.raises(engine.errors.StorageError) as caught:
        engine.dump.backup(make_config({"shop": {"db": shop_db}}), "shop", via="test")
    assert "%s is owned by nobody: lifeboat did not make it and never follows or reuses it; move it away" % planted in str(caught.value)
    assert sorted(os.listdir(profile_dir)) == [".credential.lock", ".lock", "20991231T235959Z"]  # before the fix: a new backup beside it


def test_the_catalog_does_not_list_a_symlinked_directory_as_a_backup(engine, make_config, shop_db, base, backup_root):
    config = make_config({"shop": {"db": shop_db}})
    made = engine.dump.backup(config, "shop", via="test")
    # A real backup, moved to nobody's directory and linked back under its id (by someone who could, earlier).
    elsewhere = os.path.join(base, "nobody", made["id"])
    shutil.move(made["path"], elsewhere)
    os.symlink(elsewhere, made["path"])
    [entry] = engine.catalog.scan(backup_root, "shop")
    assert (entry.id, entry.status) == (made["id"], engine.catalog.DAMAGED)
    assert "symbolic link" in entry.error
    assert engine.catalog.complete_backups(backup_root, "shop") == []
    with pytest.raises(engine.errors.NotFoundError):
        engine.catalog.resolve(backup_root, "shop")


# -- 3. atomic writes: unpredictable temporary names, checked directories --------------------------------------------

@pytest.mark.parametrize("tightened", [True, False])
def test_a_link_at_the_old_temporary_name_is_never_followed(engine, base, precious, tightened):
    """The manifest's temporary name used to be <name>.tmp.<pid>: nobody plants a link there, to root's file."""
    directory = os.path.join(base, "backup")
    os.mkdir(directory)
    os.chmod(directory, 0o777)
    as_nobody("ln", "-s", precious, os.path.join(directory, "manifest.json.tmp.%d" % os.getpid()))
    if tightened:
        os.chmod(directory, 0o700)
        engine.manifest.write(directory, {"backup_id": "x"})
        assert json.loads(read(os.path.join(directory, "manifest.json")))["backup_id"] == "x"
    else:
        with pytest.raises(engine.errors.StorageError) as caught:
            engine.manifest.write(directory, {"backup_id": "x"})
        assert str(caught.value) == ("%s is writable by group or others (owner root, mode 0777): they could replace backups "
                                     "there; fix: chmod 0700 %s" % (directory, directory))
    assert read(precious) == PRECIOUS  # before the fix: the manifest, written by root through nobody's link
    assert sorted(os.listdir(directory)) == sorted(["manifest.json.tmp.%d" % os.getpid()] + (["manifest.json"] if tightened else []))


# -- 4. directories another user can write, or owns ---------------------------------------------------------------

@pytest.mark.parametrize("which, how", [
    ("root", "mode"), ("profile", "mode"), ("root", "owner"), ("profile", "owner"),
])
def test_a_directory_another_user_could_write_is_refused(pg, age_key, shop_db, backup_root, tmp_path, which, how):
    profile_dir = os.path.join(backup_root, "shop")
    os.makedirs(profile_dir)
    os.chmod(backup_root, 0o700)
    os.chmod(profile_dir, 0o700)
    path = backup_root if which == "root" else profile_dir
    if how == "mode":
        os.chmod(path, 0o777)
        expected = ("%s is writable by group or others (owner root, mode 0777): they could replace backups there; "
                    "fix: chmod 0700 %s" % (path, path))
    else:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
        command = "lifeboat --config %s backup --profile shop" % (tmp_path / "lifeboat.yml")
        expected = ("%s belongs to nobody, but lifeboat runs as root: what root writes there nobody could not replace or "
                    "prune later (its prune would report it as damaged); run it as nobody: runuser -u nobody -- %s "
                    "(or sudo -u nobody %s)" % (path, command, command))
    proc = run_backup(pg, age_key, shop_db, backup_root, tmp_path)
    assert proc.returncode == 8, proc.stderr  # a storage error; before the fix: 0, a backup in that directory
    assert proc.stderr.strip().splitlines() == ["lifeboat: Failed to dump database %s (profile shop): %s" % (shop_db, expected)]
    assert os.listdir(profile_dir) == []


def test_a_backup_root_inside_another_users_directory_is_refused(pg, age_key, shop_db, base, tmp_path):
    """nobody could move its backups/ away and put a link to any directory of root's in its place."""
    backup_root = os.path.join(base, "nobody", "backups")
    os.mkdir(backup_root, 0o700)
    proc = run_backup(pg, age_key, shop_db, backup_root, tmp_path)
    assert proc.returncode == 8, proc.stderr  # before the fix: 0, a backup nobody can swap out
    above = os.path.join(base, "nobody")
    assert proc.stderr.strip().splitlines() == [
        "lifeboat: Failed to dump database %s (profile shop): %s, above the backup root %s, can be changed by its owner "
        "(owner nobody, mode 0755): they could replace the backup root; move the backup root, or fix: chown root %s; "
        "chmod go-w %s" % (shop_db, above, backup_root, above, above)]
    assert os.listdir(backup_root) == []


# -- 5. the commit point ------------------------------------------------------------------------------------------

def write_config(pg, age_key, shop_db, backup_root, tmp_path):
    path = str(tmp_path / "lifeboat.yml")
    with open(path, "w") as handle:
        json.dump({"connection": pg.connection(), "backup_root": backup_root,
                   "log_dir": str(tmp_path / "log"), "metrics_dir": str(tmp_path / "metrics"),
                   "encryption": {"mode": "age", "recipients": [age_key[1]]},
                   "profiles": {"shop": {"db": shop_db, "compression_level": 1}}}, handle)
    os.chmod(path, 0o600)
    return [sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", path, "backup", "--profile", "shop"]


def run_backup(pg, age_key, shop_db, backup_root, tmp_path):
    argv = write_config(pg, age_key, shop_db, backup_root, tmp_path)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def test_kill_9_at_the_commit_point_leaves_a_partial_never_a_backup_without_manifest(engine, pg, age_key, shop_db,
                                                                                     backup_root, tmp_path):
    """LIFEBOAT_TEST_PAUSE=commit holds the run just before the rename that makes it a backup (see
    _store.files.pause_point); before the fix the rename came first and the manifest after it."""
    argv = write_config(pg, age_key, shop_db, backup_root, tmp_path)
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, LIFEBOAT_TEST_PAUSE="commit"))
    try:
        line = run.stderr.readline()  # blocks until the pause (or the end of a run that never reaches it)
        assert line == "lifeboat: paused at commit\n", line + run.stderr.read()
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL
    profile_dir = os.path.join(backup_root, "shop")
    names = [n for n in os.listdir(profile_dir) if not n.startswith(".")]
    for name in names:  # nothing looks like a backup without being one
        assert name.endswith(".partial") or os.path.exists(os.path.join(profile_dir, name, "manifest.json")), names
    assert len(names) == 1 and names[0].endswith(".partial"), names
    assert os.path.exists(os.path.join(profile_dir, names[0], "manifest.json"))  # written and fsynced before the commit
    assert engine.catalog.complete_backups(backup_root, "shop") == []
    # The next run clears the dead run's leftover (it holds the lock, so nobody else is writing it) and commits.
    proc = run_backup(pg, age_key, shop_db, backup_root, tmp_path)
    assert proc.returncode == 0, proc.stderr
    [made] = engine.catalog.scan(backup_root, "shop")
    assert made.status == engine.catalog.COMPLETE
    assert sorted(n for n in os.listdir(profile_dir) if not n.startswith(".")) == [made.id]
