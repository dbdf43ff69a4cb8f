"""Failure modes: each one is a single clear error, a non-zero result of the right kind, and no harm done.

For every dump failure the test asserts: one line on stderr naming the problem,
the exit code of its kind (see plugins/module_utils/_errors.py), no new backup
(no manifest, no directory, no ``.partial`` left), the earlier backup byte for
byte as it was, and ``lifeboat_backup_failures_total`` one higher.

This module runs its own cluster (it stops and starts it) with a small
database for the earlier backups and a big one for failures mid-stream.
"""

import contextlib
import hashlib
import json
import os
import signal
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from scripts import pgcluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIFEBOAT = [sys.executable, os.path.join(REPO, "bin", "lifeboat")]
BIG_ROWS = 300000  # ~50 MB of hex text: at zstd -12 the dump streams for seconds, so a test can catch it mid-COPY

EXIT = {"config": 2, "lock": 3, "database": 4, "dump": 5, "verify": 6, "restore": 7, "storage": 8}


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A cluster of this module's own: tests stop it, and kill its backends."""
    cluster = pgcluster.create()
    cluster.psql("CREATE DATABASE small")
    cluster.psql("CREATE TABLE accounts (id int PRIMARY KEY, name text); "
                 "INSERT INTO accounts SELECT g, 'name ' || g FROM generate_series(1, 500) g; "
                 "CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'one'), (2, 'two')", db="small")
    cluster.psql("CREATE DATABASE big")
    cluster.psql("CREATE TABLE payload (id int, a text, b text); "
                 "INSERT INTO payload SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), "
                 "encode(sha256(g::text::bytea), 'base64') FROM generate_series(1, %d) g" % BIG_ROWS, db="big")
    cluster.psql("CREATE DATABASE empty")
    yield cluster
    cluster.destroy()


def config_dict(cluster, root, age_key, db="small", **profile):
    return {
        "connection": cluster.connection(),
        "backup_root": root,
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {"app": dict({"db": db, "compression_level": 1}, **profile)},
    }


@pytest.fixture(scope="module")
def seed(own, age_key, tmp_path_factory):
    """A backup root holding one good backup of profile app; tests copy it."""
    root = str(tmp_path_factory.mktemp("seed") / "backups")
    proc = lifeboat(config_dict(own, root, age_key), "backup", "--profile", "app", tmp=tmp_path_factory.mktemp("seedcfg"))
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def root(seed, tmp_path):
    path = str(tmp_path / "backups")
    shutil.copytree(seed, path, symlinks=True)
    return path


def write_config(config, tmp):
    path = os.path.join(str(tmp), "lifeboat-%s.yml" % uuid.uuid4().hex[:6])
    with open(path, "w") as handle:
        json.dump(config, handle)
    os.chmod(path, 0o600)
    return path


def lifeboat(config, *args, tmp, wait=True):
    argv = LIFEBOAT + ["--config", write_config(config, tmp)] + list(args)
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def finish(run, timeout=300):
    out, err = run.communicate(timeout=timeout)
    return subprocess.CompletedProcess(run.args, run.returncode, out, err)


def tree(profile_dir):
    """Every file under the profile directory (the lock aside) with its sha256."""
    result = {}
    for base, _dirs, files in os.walk(profile_dir):
        for name in files:
            path = os.path.join(base, name)
            if name == ".lock":
                continue
            with open(path, "rb") as handle:
                result[os.path.relpath(path, profile_dir)] = hashlib.sha256(handle.read()).hexdigest()
    return result


def failures(root, metrics_dir=None):
    path = os.path.join(metrics_dir or os.path.join(root, ".metrics"), "lifeboat_app.prom")
    with open(path) as handle:
        for line in handle:
            if line.startswith("lifeboat_backup_failures_total{"):
                return int(line.split()[-1])
    raise AssertionError("no failure counter in %s" % path)


class Before:
    """What the profile looked like before a failing run."""

    def __init__(self, root, metrics_dir=None):
        self.root = root
        self.metrics_dir = metrics_dir
        self.profile_dir = os.path.join(root, "app")
        self.files = tree(self.profile_dir)
        self.entries = sorted(os.listdir(self.profile_dir))
        self.failures = failures(root, metrics_dir)
        assert any(name.endswith("manifest.json") for name in self.files)


def assert_failed_cleanly(before, proc, kind, *words):
    """One line naming the problem, the right exit code, nothing new, nothing changed, one more failure counted."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifeboat: "), proc.stderr
    for word in words:
        assert word in lines[0], "%r not in %r" % (word, lines[0])
    assert proc.returncode == EXIT[kind], "rc %d, expected %d (%s): %s" % (proc.returncode, EXIT[kind], kind, proc.stderr)
    assert proc.stdout == ""
    assert sorted(os.listdir(before.profile_dir)) == before.entries  # no new backup, no .partial left
    assert tree(before.profile_dir) == before.files  # the earlier backup byte for byte
    assert failures(before.root, before.metrics_dir) == before.failures + 1


def assert_terminated(proc):
    """A backend terminated while blocked sending COPY data closes without a word (it could block again, and the
    protocol may be mid-message); one terminated between two sends says why. Both are the server's message."""
    assert ("terminating connection due to administrator command" in proc.stderr
            or "server closed the connection unexpectedly" in proc.stderr), proc.stderr


def stop_zstd(run, timeout=60):
    """SIGSTOP the run's zstd as soon as it exists, before pg_dump has sent it a row: pg_dump then blocks in its
    first COPY on the full pipe, whatever zstd would have read ahead. Returns zstd's pid."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = subprocess.run(["pgrep", "-P", str(run.pid), "-x", "zstd"], capture_output=True, text=True, check=False).stdout.split()
        if found:
            os.kill(int(found[0]), signal.SIGSTOP)
            return int(found[0])
        if run.poll() is not None:
            raise AssertionError("the backup ended before zstd was seen: rc %s %s" % (run.returncode, run.communicate()))
        time.sleep(0.01)
    raise AssertionError("zstd never started")


def wait_for_copy(cluster, db, run, timeout=120):
    """The pid of pg_dump's backend once it streams table data (``run`` is the lifeboat process)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if run.poll() is not None:
            raise AssertionError("the backup ended before pg_dump was seen streaming: rc %s %s" % (run.returncode, run.communicate()))
        pid = cluster.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'lifeboat' AND datname = '%s' "
                           "AND query LIKE 'COPY %%' AND state = 'active'" % db).strip()
        if pid:
            return int(pid)
        time.sleep(0.05)
    raise AssertionError("pg_dump never started streaming")


# -- the server and the connection ---------------------------------------------------------------------------------

def test_server_stopped_before_the_dump(own, age_key, root, tmp_path):
    before = Before(root)
    own.stop()
    try:
        proc = lifeboat(config_dict(own, root, age_key), "backup", "--profile", "app", tmp=tmp_path)
    finally:
        own.start()
    assert_failed_cleanly(before, proc, "database", "Failed to dump database small (profile app)",
                          "cannot connect to database small on 127.0.0.1:%d" % own.port, "Connection refused")


def test_server_stopped_during_the_dump(own, age_key, root, tmp_path):
    before = Before(root)
    run = lifeboat(config_dict(own, root, age_key, db="big", compression_level=12), "backup", "--profile", "app",
                   tmp=tmp_path, wait=False)
    try:
        wait_for_copy(own, "big", run)
        assert any(name.endswith(".partial") for name in os.listdir(before.profile_dir))
        own.stop("fast")
        proc = finish(run)
    finally:
        own.start()
    assert_failed_cleanly(before, proc, "dump", "Failed to dump database big (profile app): pg_dump exited with status 1")
    assert_terminated(proc)


def test_backend_terminated_mid_stream(own, age_key, root, tmp_path):
    before = Before(root)
    run = lifeboat(config_dict(own, root, age_key, db="big", compression_level=12), "backup", "--profile", "app",
                   tmp=tmp_path, wait=False)
    pid = wait_for_copy(own, "big", run)
    assert own.psql("SELECT pg_terminate_backend(%d)" % pid).strip() == "t"
    proc = finish(run)
    assert_failed_cleanly(before, proc, "dump", "Failed to dump database big (profile app): pg_dump exited with status 1")
    assert_terminated(proc)


def test_sigterm_during_the_dump_leaves_no_partial(own, age_key, root, tmp_path):
    """cron's timeout or a shutdown sends SIGTERM: the run unwinds like ^C and counts as a failed attempt."""
    before = Before(root)
    run = lifeboat(config_dict(own, root, age_key, db="big", compression_level=12), "backup", "--profile", "app",
                   tmp=tmp_path, wait=False)
    wait_for_copy(own, "big", run)
    run.send_signal(signal.SIGTERM)
    proc = finish(run)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "lifeboat: terminated by signal 15"
    assert sorted(os.listdir(before.profile_dir)) == before.entries  # the .partial directory was removed
    assert tree(before.profile_dir) == before.files
    assert failures(before.root) == before.failures + 1


def audit_lines(root, action):
    with open(os.path.join(root, ".log", "audit.jsonl")) as handle:
        return [line for line in map(json.loads, handle) if line["action"] == action]


def test_sigterm_during_a_restore_into_a_new_database_drops_it(own, age_key, tmp_path):
    """SIGTERM while pg_restore loads rows: the new database goes, and the audit log says the restore was interrupted."""
    root = str(tmp_path / "backups")
    config = config_dict(own, root, age_key, db="big")
    assert lifeboat(config, "backup", "--profile", "app", tmp=tmp_path).returncode == 0
    dbs = databases(own)
    target = "restore_%s" % uuid.uuid4().hex[:6]
    run = lifeboat(config, "restore", "--path", the_backup(root), "--target", target, "--identity", age_key[0], tmp=tmp_path, wait=False)
    deadline = time.time() + 120
    while not own.psql("SELECT 1 FROM pg_stat_activity WHERE datname = '%s' AND query LIKE 'COPY %%'" % target).strip():
        assert run.poll() is None and time.time() < deadline, "the restore ended before it loaded rows: %s" % (run.communicate(),)
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    proc = finish(run)
    assert proc.returncode == 130, proc.stderr
    assert databases(own) == dbs
    line = audit_lines(root, "restore")[-1]
    assert line["result"] == "interrupted" and line["target"] == target and "signal 15" in line["error"]


def test_wrong_password(own, age_key, root, tmp_path):
    before = Before(root)
    config = config_dict(own, root, age_key)
    config["connection"]["login_password"] = "not-the-password"
    proc = lifeboat(config, "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "database", 'password authentication failed for user "postgres"')
    assert "not-the-password" not in proc.stderr


def test_unknown_database(own, age_key, root, tmp_path):
    before = Before(root)
    proc = lifeboat(config_dict(own, root, age_key, db="no_such_db"), "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "database", 'database "no_such_db" does not exist')


def test_database_without_tables_fails_the_floor(own, age_key, root, tmp_path):
    before = Before(root)
    proc = lifeboat(config_dict(own, root, age_key, db="empty"), "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "config", "database empty has 0 tables to dump but profile requires at least 1")


@pytest.mark.parametrize("output", [b"", b"PGDMP", os.urandom(100)], ids=["empty", "header-only", "100-bytes"])
def test_pg_dump_exiting_0_with_tiny_output_fails_the_floor(own, age_key, root, tmp_path, output):
    """A fake pg_dump (fault injection through connection.pg_bin_dir) that 'succeeds' with next to nothing."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "payload").write_bytes(output)
    script = bin_dir / "pg_dump"
    script.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 15.99"; exit 0; fi\n'
                      'cat "%s"\nexit 0\n' % (bin_dir / "payload"))
    script.chmod(0o755)
    before = Before(root)
    config = config_dict(own, root, age_key)
    config["connection"]["pg_bin_dir"] = str(bin_dir)
    proc = lifeboat(config, "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "dump", "pg_dump produced only", "bytes for 2 tables: the archive is empty or cut short")


# -- storage --------------------------------------------------------------------------------------------------------

@pytest.fixture
def mount_point(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    path = tmp_path / "mnt"
    path.mkdir()
    yield str(path)
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full(own, age_key, seed, mount_point, tmp_path):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", mount_point], check=True)
    root = os.path.join(mount_point, "backups")
    shutil.copytree(seed, root)
    before = Before(root)
    proc = lifeboat(config_dict(own, root, age_key, db="big"), "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "storage", "no space left on device", root)


def test_unwritable_backup_root(own, age_key, seed, mount_point, tmp_path):
    """Root ignores file modes: a read-only mount is what stops it."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount_point], check=True)
    root = os.path.join(mount_point, "backups")
    shutil.copytree(seed, root)
    metrics = str(tmp_path / "metrics")  # elsewhere, so the failure can be counted
    shutil.copytree(os.path.join(root, ".metrics"), metrics)
    subprocess.run(["mount", "-o", "remount,ro", mount_point], check=True)
    before = Before(root, metrics)
    config = dict(config_dict(own, root, age_key), metrics_dir=metrics, log_dir=str(tmp_path / "log"))
    proc = lifeboat(config, "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "storage", "Read-only file system", os.path.join(root, "app"))


# -- table locks ----------------------------------------------------------------------------------------------------

def _holding(cluster, db, sql):
    """A session that runs ``sql`` in a transaction and keeps it open until the test ends it (stdin closed)."""
    psql = subprocess.Popen([os.path.join(cluster.info["bin_dir"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                             "-h", cluster.socket_dir, "-p", str(cluster.port), "-U", "postgres", "-d", db],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    psql.stdin.write("BEGIN;\n%s;\n" % sql)
    psql.stdin.flush()
    return psql


def _release(psql):
    psql.stdin.write("COMMIT;\n")
    psql.stdin.close()
    assert psql.wait(timeout=60) == 0, psql.stderr.read()


def test_table_locked_by_another_session(own, age_key, root, tmp_path):
    """pg_dump would wait for ever behind an ALTER TABLE or VACUUM FULL; lock_wait_timeout makes it one clear error."""
    before = Before(root)
    holder = _holding(own, "small", "LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
    try:
        deadline = time.time() + 30
        while own.psql("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'notes'::regclass",
                       db="small").strip() != "1":
            assert time.time() < deadline, "the holder never got its lock"
            time.sleep(0.05)
        started = time.time()
        proc = lifeboat(config_dict(own, root, age_key, lock_wait_timeout=1), "backup", "--profile", "app", tmp=tmp_path)
        waited = time.time() - started
    finally:
        _release(holder)
    assert_failed_cleanly(before, proc, "dump", "Failed to dump database small (profile app): public.notes is locked by "
                          "another session and was not released within lock_wait_timeout (1 s)")
    assert waited < 30, "the run waited %.0f s" % waited
    assert lifeboat(config_dict(own, root, age_key), "backup", "--profile", "app", tmp=tmp_path).returncode == 0


def test_row_counts_hold_no_table_locks_while_pg_dump_streams(own, age_key, root, tmp_path):
    """The counts commit when done: only pg_dump keeps its share lock, so an ALTER TABLE queued during the dump
    waits for pg_dump alone, and the run ends normally, with the counts taken before the ALTER."""
    run = lifeboat(config_dict(own, root, age_key, db="big", compression_level=12), "backup", "--profile", "app",
                   tmp=tmp_path, wait=False)
    zstd = stop_zstd(run)  # pg_dump stays in its COPY, blocked on the full pipe, until the checks are done
    try:
        pid = wait_for_copy(own, "big", run)
        holders = ("SELECT string_agg(l.pid::text || ' ' || a.query, '; ') FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                   "WHERE a.application_name = 'lifeboat' AND l.relation = 'payload'::regclass AND l.pid <> %d" % pid)
        deadline = time.time() + 10
        while own.psql(holders, db="big").strip():
            assert time.time() < deadline, "other lifeboat sessions hold locks on payload: %s" % own.psql(holders, db="big")
            time.sleep(0.05)
        assert own.psql("SELECT state FROM pg_stat_activity WHERE pid = %d" % pid, db="big").strip() == "active"
        alter = _holding(own, "big", "ALTER TABLE payload ADD COLUMN c int")
    except BaseException:
        run.kill()
        raise
    finally:
        os.kill(zstd, signal.SIGCONT)
    proc = finish(run)
    _release(alter)
    assert proc.returncode == 0, proc.stderr
    newest = sorted(n for n in os.listdir(os.path.join(root, "app")) if not n.startswith("."))[-1]
    with open(os.path.join(root, "app", newest, "manifest.json")) as handle:
        tables = json.load(handle)["tables"]
    assert [t["rows"] for t in tables if t["name"] == "payload"] == [BIG_ROWS]
    own.psql("ALTER TABLE payload DROP COLUMN c", db="big")


def test_a_stalled_pipeline_ends_at_backup_timeout(own, age_key, root, tmp_path):
    """A step that neither reads nor exits (zstd stopped here; a stalled disk or a silent server alike) holds the
    whole pipeline: backup_timeout stops it and the run fails cleanly, naming the limit."""
    before = Before(root)
    run = lifeboat(config_dict(own, root, age_key, db="big", backup_timeout=3), "backup", "--profile", "app",
                   tmp=tmp_path, wait=False)
    zstd = stop_zstd(run)  # it never reads a byte: the pipeline cannot end by itself
    try:
        proc = finish(run, timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(zstd, signal.SIGCONT)
    assert_failed_cleanly(before, proc, "dump", "Failed to dump database big (profile app): did not finish within "
                          "backup_timeout (3 s); pg_dump and its pipeline were stopped")
    assert not os.path.exists("/proc/%d" % zstd), "the stopped zstd was left behind"


# -- concurrency, names and options ---------------------------------------------------------------------------------

def test_concurrent_run_of_the_same_profile(engine, own, age_key, root, tmp_path):
    before = Before(root)
    with engine.storage.ProfileLock(before.profile_dir, "app"):
        proc = lifeboat(config_dict(own, root, age_key), "backup", "--profile", "app", tmp=tmp_path)
    assert_failed_cleanly(before, proc, "lock", "another run of profile app is in progress (pid %d)" % os.getpid())
    # The lock goes with its holder: the next run works.
    assert lifeboat(config_dict(own, root, age_key), "backup", "--profile", "app", tmp=tmp_path).returncode == 0


@pytest.mark.parametrize("name", ["../x", "", "x" * 64, "a/b", ".hidden", "-dash"])
def test_bad_profile_names(own, age_key, root, tmp_path, name):
    config = config_dict(own, root, age_key)
    before = tree(os.path.join(root, "app"))
    proc = lifeboat(config, "backup", "--profile=" + name, tmp=tmp_path)
    assert proc.returncode == EXIT["config"]
    assert proc.stderr == "lifeboat: bad profile name %r: use 1-63 letters, digits, '-' or '_', starting with a letter or digit\n" % name
    # The same name in the configuration is refused when the file is read.
    config["profiles"] = {name: {"db": "small"}}
    proc = lifeboat(config, "check-config", tmp=tmp_path)
    assert proc.returncode == EXIT["config"] and "bad profile name %r" % name in proc.stderr
    assert sorted(os.listdir(root)) == [".log", ".metrics", "app"] and tree(os.path.join(root, "app")) == before


@pytest.mark.parametrize("profile, message", [
    ({"db": "small", "compresion_level": 3}, "profiles.app: unknown key 'compresion_level' (expected one of: "),
    ({"db": "small", "compression_level": -1}, "profiles.app.compression_level: must be between 1 and 19, got -1"),
    ({"db": "small", "compression_level": "high"}, "profiles.app.compression_level: must be an integer, got a string"),
    ({"db": "small", "tables": "accounts"}, "profiles.app.tables: must be a list, got a string"),
    ({"db": "small", "globals": "yes"}, "profiles.app.globals: must be a boolean, got a string"),
    ({"db": "small", "min_tables": -2}, "profiles.app.min_tables: must be at least 0, got -2"),
    ({"tables": ["accounts"]}, "profiles.app.db: is required"),
])
def test_bad_options(own, age_key, root, tmp_path, profile, message):
    before = Before(root)
    config = config_dict(own, root, age_key)
    config["profiles"]["app"] = profile
    proc = lifeboat(config, "backup", "--profile", "app", tmp=tmp_path)
    assert proc.returncode == EXIT["config"]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert sorted(os.listdir(before.profile_dir)) == before.entries and tree(before.profile_dir) == before.files


def test_bad_options_through_the_module(module, own, root):
    args = dict(own.connection(), db="small", backup_root=root, encryption="none", compression_level=25)
    result = module("dump", args)
    assert result.failed and result["msg"] == "profiles.small.compression_level: must be between 1 and 19, got 25"
    assert result["error_kind"] == "config"
    result = module("dump", dict(args, compression_level=3, profile="../x"))
    assert result.failed and result["msg"].startswith("bad profile name '../x'")
    assert not os.path.exists(os.path.join(root, "small"))


# -- reading backups back: identities, damaged artifacts, damaged manifests ----------------------------------------

def the_backup(root):
    names = [n for n in os.listdir(os.path.join(root, "app")) if not n.startswith(".")]
    assert len(names) == 1
    return os.path.join(root, "app", names[0])


def verify_failures(root):
    with open(os.path.join(root, ".metrics", "lifeboat_app.prom")) as handle:
        for line in handle:
            if line.startswith("lifeboat_verify_failures_total{"):
                return int(line.split()[-1])
    return 0


def databases(cluster):
    return set(cluster.psql("SELECT datname FROM pg_database").split())


def artifacts_and_manifest(backup):
    return dict((k, v) for k, v in tree(backup).items() if k != "verification.json")


def assert_one_line(proc, kind, *words):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifeboat: "), proc.stderr
    for word in words:
        assert word in lines[0], "%r not in %r" % (word, lines[0])
    assert proc.returncode == EXIT[kind], "rc %d, expected %d: %s" % (proc.returncode, EXIT[kind], proc.stderr)


def damage_artifact(path, how):
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    if how == "truncated-1":
        data = data[:-1]
    elif how == "truncated-half":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x01
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    return len(data)


@pytest.mark.parametrize("how", ["truncated-1", "truncated-half", "flipped"])
def test_damaged_artifact_fails_every_level_and_restore(own, age_key, root, tmp_path, how):
    backup = the_backup(root)
    name = "small.dump.zst.age"
    recorded = os.path.getsize(os.path.join(backup, name))
    size = damage_artifact(os.path.join(backup, name), how)
    reason = ("is %d bytes but the manifest records %d (truncated)" % (size, recorded) if how.startswith("truncated")
              else "does not match its SHA-256 in the manifest (corrupted)")
    files = artifacts_and_manifest(backup)
    dbs = databases(own)
    config = config_dict(own, root, age_key)
    failed_before = verify_failures(root)
    for level in ("checksum", "archive", "restore"):
        proc = lifeboat(config, "verify", "--path", backup, "--level", level, "--identity", age_key[0], tmp=tmp_path)
        assert_one_line(proc, "verify", "Verification (%s) of backup %s failed: artifact %s %s"
                        % (level, os.path.basename(backup), name, reason))
    for jobs in ("1", "2"):
        target = "restore_%s" % uuid.uuid4().hex[:6]
        proc = lifeboat(config, "restore", "--path", backup, "--target", target, "--jobs", jobs, "--identity", age_key[0],
                        tmp=tmp_path)
        assert_one_line(proc, "restore", "Failed to restore backup %s into %s: artifact %s %s"
                        % (os.path.basename(backup), target, name, reason))
    assert databases(own) == dbs  # no target and no scratch database left behind
    assert artifacts_and_manifest(backup) == files
    assert verify_failures(root) == failed_before + 3
    with open(os.path.join(backup, "verification.json")) as handle:
        assert json.load(handle)["ok"] is False


def test_missing_identity(own, age_key, root, tmp_path):
    backup = the_backup(root)
    files = artifacts_and_manifest(backup)
    config = config_dict(own, root, age_key)
    proc = lifeboat(config, "verify", "--path", backup, "--level", "archive", tmp=tmp_path)
    assert_one_line(proc, "verify", "small.dump.zst.age is encrypted: an age identity_file is needed to read it")
    proc = lifeboat(config, "restore", "--path", backup, "--target", "never_created", tmp=tmp_path)
    assert_one_line(proc, "config", "small.dump.zst.age is encrypted: an age identity_file is needed to read it")
    missing = str(tmp_path / "no-such-key.txt")
    proc = lifeboat(config, "restore", "--path", backup, "--target", "never_created", "--identity", missing, tmp=tmp_path)
    assert_one_line(proc, "config", "age identity file %s does not exist" % missing)
    assert "never_created" not in databases(own)
    assert artifacts_and_manifest(backup) == files


def test_wrong_identity(own, age_key, root, tmp_path):
    wrong = str(tmp_path / "wrong.txt")
    subprocess.run(["age-keygen", "-o", wrong], check=True, capture_output=True)
    backup = the_backup(root)
    files = artifacts_and_manifest(backup)
    dbs = databases(own)
    config = config_dict(own, root, age_key)
    reason = "cannot be read back: age exited with status 1: age: error: no identity matched any of the recipients"
    for level in ("archive", "restore"):
        proc = lifeboat(config, "verify", "--path", backup, "--level", level, "--identity", wrong, tmp=tmp_path)
        assert_one_line(proc, "verify", "Verification (%s) of backup" % level, "artifact small.dump.zst.age " + reason)
    for jobs in ("1", "2"):
        proc = lifeboat(config, "restore", "--path", backup, "--target", "wrong_key", "--jobs", jobs, "--identity", wrong,
                        tmp=tmp_path)
        assert_one_line(proc, "restore", "Failed to restore backup %s into wrong_key: artifact small.dump.zst.age"
                        % os.path.basename(backup), "no identity matched any of the recipients")
    assert databases(own) == dbs
    assert artifacts_and_manifest(backup) == files


def test_damage_found_while_the_largest_table_loads(own, age_key, tmp_path):
    """A two-job restore streams the biggest table in while the artifact decrypts: damage near the end is found
    after rows went in, and the half-loaded database is dropped, not left behind."""
    root = str(tmp_path / "backups")
    config = config_dict(own, root, age_key, db="big")
    assert lifeboat(config, "backup", "--profile", "app", tmp=tmp_path).returncode == 0
    backup, name = the_backup(root), "big.dump.zst.age"
    path = os.path.join(backup, name)
    with open(path, "r+b") as handle:  # far from the head: the table of contents and most rows decrypt fine
        handle.seek(os.path.getsize(path) * 9 // 10)
        byte = handle.read(1)[0]
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte ^ 1]))
    dbs = databases(own)
    target = "restore_%s" % uuid.uuid4().hex[:6]
    args = ("restore", "--path", backup, "--target", target, "--jobs", "2", "--identity", age_key[0])
    plan = json.loads(lifeboat(config, "--json", *args, "--dry-run", tmp=tmp_path).stdout)
    assert plan["method"] == "decrypted temporary file, 2 jobs, loading public.payload while it decrypts"
    proc = lifeboat(config, *args, tmp=tmp_path)
    assert_one_line(proc, "restore", "Failed to restore backup %s into %s: artifact %s does not match its SHA-256 in the "
                    "manifest (corrupted)" % (os.path.basename(backup), target, name))
    assert databases(own) == dbs


@pytest.mark.parametrize("how", ["edited", "cut"])
def test_damaged_manifest(own, age_key, root, tmp_path, how):
    backup = the_backup(root)
    path = os.path.join(backup, "manifest.json")
    with open(path) as handle:
        text = handle.read()
    if how == "edited":
        document = json.loads(text)
        document["tables"][0]["rows"] += 1  # a plausible lie: still valid JSON
        text = json.dumps(document, indent=2, sort_keys=True)
        reason = "its checksum does not match its content"
    else:
        text = text[: len(text) // 2]
        reason = "not valid JSON"
    with open(path, "w") as handle:
        handle.write(text)
    config = config_dict(own, root, age_key)
    damaged = "manifest of %s is damaged: %s" % (backup, reason)
    proc = lifeboat(config, "verify", "--path", backup, "--level", "checksum", tmp=tmp_path)
    assert_one_line(proc, "verify", damaged)
    proc = lifeboat(config, "restore", "--path", backup, "--target", "from_damaged", "--identity", age_key[0], tmp=tmp_path)
    assert_one_line(proc, "verify", damaged)
    # A damaged manifest is not a backup: the newest backup of the profile is... none.
    proc = lifeboat(config, "verify", "--profile", "app", "--identity", age_key[0], tmp=tmp_path)
    assert proc.returncode == 10 and proc.stderr == "lifeboat: profile app has no complete backup under %s\n" % root
    listed = json.loads(lifeboat(config, "--json", "list", tmp=tmp_path).stdout)
    entry = listed["app"]["backups"][0]
    assert entry["status"] == "damaged" and entry["error"].startswith(damaged)
    assert listed["app"]["health"]["count"] == 0 and listed["app"]["health"]["incomplete"] == [os.path.basename(backup)]
    assert "from_damaged" not in databases(own)
