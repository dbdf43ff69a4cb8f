"""What ``kill -9`` of the engine leaves behind, at named points of a real backup and a real parallel restore.

Each test stops one program of the run (SIGSTOP) as soon as it starts, so the
run is reliably at that point, then kills the engine with SIGKILL and looks:
no program of the run still running, nothing committed afterwards, no password
or private key on disk, and the decrypted archive (which SIGKILL cannot take
with it) gone at the next lifeboat command.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 150000


@pytest.fixture(scope="module")
def kill_db(pg):
    pg.psql("CREATE DATABASE killed")
    pg.psql("CREATE TABLE payload (id int PRIMARY KEY, a text, b text); "
            "INSERT INTO payload SELECT g, md5(g::text) || md5((g + 1)::text), encode(sha256(g::text::bytea), 'base64') "
            "FROM generate_series(1, %d) g; CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'one')" % ROWS,
            db="killed")
    return "killed"


@pytest.fixture(scope="module")
def bin_dir(pg, tmp_path_factory):
    """The PostgreSQL client programs, but a pg_restore --jobs that stops itself (SIGSTOP) before it starts: the
    named point "restoring", before pg_restore has sent the server a thing."""
    path = tmp_path_factory.mktemp("pgbin")
    for name in ("pg_dump", "pg_dumpall", "psql"):
        (path / name).symlink_to(os.path.join(pg.info["bin_dir"], name))
    script = path / "pg_restore"
    script.write_text('#!/bin/sh\ncase "$*" in *--jobs=*) kill -STOP $$ ;; esac\nexec %s "$@"\n'
                      % os.path.join(pg.info["bin_dir"], "pg_restore"))
    script.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def zstd_dir(tmp_path_factory):
    """A zstd that stops itself (SIGSTOP) when it is to decompress: the named point "decrypting", hit every time
    however fast the archive decrypts (polling for a short-lived zstd missed it on a loaded machine)."""
    path = tmp_path_factory.mktemp("zstdbin")
    script = path / "zstd"
    script.write_text('#!/bin/sh\ncase " $* " in *" -d "*) kill -STOP $$ ;; esac\nexec %s "$@"\n' % shutil.which("zstd"))
    script.chmod(0o755)
    return str(path)


def lifeboat(pg, age_key, tmp_path, *args, wait=True, bin_dir=None, path_dir=None):
    """The lifeboat command with its temporary directory in ``tmp_path/tmp`` (so a test can look at all of it)."""
    config = tmp_path / "lifeboat.yml"
    config.write_text(json.dumps({
        "connection": pg.connection(**({"pg_bin_dir": bin_dir} if bin_dir else {})),
        "backup_root": str(tmp_path / "backups"),
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {"app": {"db": "killed", "compression_level": 12}},
    }))
    config.chmod(0o600)
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    argv = [sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", str(config)] + list(args)
    env = dict(os.environ, TMPDIR=str(tmp))
    if path_dir:
        env["PATH"] = path_dir + os.pathsep + env["PATH"]
    if wait:
        return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, env=env)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def proc_file(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def alive(pid):
    stat_line = proc_file(pid, "stat")
    return bool(stat_line) and stat_line.rsplit(b")", 1)[1].split()[0] != b"Z"


def stop_child(run, program, *words, timeout=120):
    """SIGSTOP the child of ``run`` running ``program`` with ``words`` in its argv as soon as it exists; its pid."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True, check=False).stdout.split():
            argv = proc_file(int(pid), "cmdline").split(b"\0")
            if os.path.basename(argv[0]) == program.encode() and all(w.encode() in argv for w in words):
                os.kill(int(pid), signal.SIGSTOP)
                return int(pid)
        assert run.poll() is None, "the run ended before %s started: %s" % (program, run.stderr.read())
        time.sleep(0.005)
    raise AssertionError("%s never started" % program)


def stopped_child(run, *words, timeout=120):
    """The child of ``run`` with ``words`` in its argv once it has stopped itself."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True, check=False).stdout.split():
            argv = proc_file(int(pid), "cmdline").split(b"\0")
            state = proc_file(int(pid), "stat").rsplit(b")", 1)[-1].split()[:1]
            if state == [b"T"] and all(w.encode() in argv for w in words):
                return int(pid)
        assert run.poll() is None, "the run ended before it was seen: %s" % run.stderr.read()
        time.sleep(0.01)
    raise AssertionError("no stopped child with %s" % (words,))


def child(run, program):
    for pid in subprocess.run(["pgrep", "-P", str(run.pid), "-x", program], capture_output=True, text=True, check=False).stdout.split():
        return int(pid)
    raise AssertionError("no %s in the run" % program)


def kill_9(run, programs):
    """SIGKILL the engine; True once none of ``programs`` runs any more (bounded wait)."""
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    run.stderr.close()
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(pid) for pid in programs):
        time.sleep(0.05)
    survivors = [pid for pid in programs if alive(pid)]
    for pid in survivors:  # the old way: they go on by themselves once continued
        os.kill(pid, signal.SIGCONT)
    return not survivors


def files_holding(base, secrets):
    """Files under ``base`` that hold any of ``secrets``."""
    found = []
    for directory, _dirs, names in os.walk(base):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                data = handle.read()
            found += [path for secret in secrets if secret in data]
    return found


def test_kill_9_during_a_backup_leaves_no_password_no_identity_and_no_program(pg, kill_db, age_key, tmp_path):
    password = pg.password.encode()
    run = lifeboat(pg, age_key, tmp_path, "backup", "--profile", "app", "--verify", "archive", wait=False)
    zstd = stop_child(run, "zstd")  # the named point: pg_dump streams into a stopped zstd, the one-time identity made
    time.sleep(0.5)
    programs = [zstd, child(run, "pg_dump"), child(run, "age")]
    environ = dict(item.split(b"=", 1) for item in proc_file(programs[1], "environ").split(b"\0") if b"=" in item)
    passfile = environ[b"PGPASSFILE"].decode()
    with open(passfile, "rb") as handle:
        assert password in handle.read()  # the file libpq reads
    secrets = [password, b"AGE-SECRET-KEY-"]
    assert files_holding(str(tmp_path / "tmp"), secrets) == []  # not on disk while it runs
    assert kill_9(run, programs), "pg_dump, zstd or age outlived the engine"
    assert not os.path.exists(passfile)
    assert files_holding(str(tmp_path / "tmp"), secrets) == []


@pytest.mark.parametrize("point", ["decrypting", "restoring"])
def test_kill_9_during_a_parallel_clean_restore_commits_nothing_and_leaves_no_plaintext(pg, kill_db, age_key, bin_dir, zstd_dir,
                                                                                        tmp_path, point):
    made = lifeboat(pg, age_key, tmp_path, "backup", "--profile", "app", bin_dir=bin_dir)
    assert made.returncode == 0, made.stderr
    target = "killed_target_%s" % point
    pg.psql('DROP DATABASE IF EXISTS "%s"' % target)
    pg.psql('CREATE DATABASE "%s" TEMPLATE killed' % target)
    pg.psql("DELETE FROM payload WHERE id > 10", db=target)  # what a restore that went on would put back
    run = lifeboat(pg, age_key, tmp_path, "restore", "--profile", "app", "--target", target, "--no-create", "--clean",
                   "--jobs", "2", "--identity", age_key[0], wait=False, bin_dir=bin_dir,
                   path_dir=zstd_dir if point == "decrypting" else None)
    if point == "decrypting":
        programs = [stopped_child(run, "-d", "-c")]
        programs.append(child(run, "age"))
    else:  # the archive is decrypted in the temporary directory, pg_restore --jobs about to read it
        programs = [stopped_child(run, "--jobs=2")]
    leftovers = [os.path.join(str(tmp_path / "tmp"), name) for name in os.listdir(str(tmp_path / "tmp"))
                 if name.startswith("lifeboat-restore-")]
    assert len(leftovers) == 1 and os.path.exists(os.path.join(leftovers[0], "archive"))
    assert kill_9(run, programs), "the restore's programs outlived the engine"
    time.sleep(2)
    assert pg.psql("SELECT count(*) FROM payload", db=target).strip() == "10"  # nothing committed afterwards
    assert pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'" % target).strip() == "0"
    assert os.path.exists(leftovers[0])  # what SIGKILL cannot take with it ...
    listed = lifeboat(pg, age_key, tmp_path, "list", bin_dir=bin_dir)
    assert listed.returncode == 0, listed.stderr
    assert os.listdir(str(tmp_path / "tmp")) == []  # ... the next lifeboat command removes
