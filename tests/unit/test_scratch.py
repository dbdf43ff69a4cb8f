"""Secrets that die with the engine, and private directories a killed engine leaves for the next command to sweep."""

import os
import pwd
import signal
import stat
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# An engine process that makes a private directory with plaintext in it, says so, and waits to be killed.
KILLED = r"""
import importlib.machinery, importlib.util, sys, time
spec = importlib.machinery.ModuleSpec("lifeboat_engine", None, is_package=True)
spec.submodule_search_locations = [sys.argv[1] + "/plugins/module_utils"]
sys.modules["lifeboat_engine"] = importlib.util.module_from_spec(spec)
scratch = importlib.import_module("lifeboat_engine._stream.scratch")
work = scratch.PrivateDir("restore", sys.argv[2])
open(work.path + "/archive", "w").write("plaintext")
secret = scratch.SecretFile("lifeboat-identity", "AGE-SECRET-KEY-1TEST")
print(work.path, secret.path, flush=True)
time.sleep(300)
"""


def killed_engine(base):
    """A private directory and a secret's path, left by an engine killed with SIGKILL."""
    proc = subprocess.Popen([sys.executable, "-c", KILLED, REPO, str(base)], stdout=subprocess.PIPE, text=True)
    try:
        work, secret = proc.stdout.readline().split()
        assert open(os.path.join(work, "archive")).read() == "plaintext"
        assert open(secret).read() == "AGE-SECRET-KEY-1TEST"  # what age reads, by name
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return work, secret


def test_a_killed_engine_leaves_no_secret_and_its_directory_goes_at_the_next_sweep(engine, tmp_path):
    work, secret = killed_engine(tmp_path)
    assert not os.path.exists(secret)  # a memfd: gone with the process
    assert os.path.exists(os.path.join(work, "archive"))  # SIGKILL leaves this much
    assert engine.scratch.sweep(str(tmp_path)) == [work] and not os.path.exists(work)


def test_the_sweep_leaves_what_is_not_a_dead_engines(engine, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a directory of another user needs root to make (CI runs the tests as root)")
    scratch = engine.scratch
    live = scratch.PrivateDir("restore", str(tmp_path))  # this process is alive
    unmarked = tmp_path / "lifeboat-restore-unmarked"  # an engine killed before it marked it: empty
    unmarked.mkdir(mode=0o700)
    others = tmp_path / "lifeboat-restore-others"  # another user's, with a dead owner: not ours to remove
    others.mkdir(mode=0o700)
    open_to_all = tmp_path / "lifeboat-restore-open"
    open_to_all.mkdir()
    link = tmp_path / "lifeboat-restore-link"
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    dead_line = killed_marker()
    for path in (others, open_to_all, target):
        (path / ".owner").write_text(dead_line)
    open_to_all.chmod(0o777)
    link.symlink_to(target)
    os.chown(str(others), pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
    reused = tmp_path / "lifeboat-restore-reused"  # our own pid, but another process's start time
    reused.mkdir(mode=0o700)
    (reused / ".owner").write_text("%d 1 %s\n" % (os.getpid(), os.readlink("/proc/self/ns/pid")))
    try:
        removed = scratch.sweep(str(tmp_path))
        assert removed == [str(reused)]
        for path in (live.path, unmarked, others, open_to_all, link, target):
            assert os.path.exists(str(path)), path
    finally:
        live.remove()


def killed_marker():
    """The owner line of a process that has ended."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return "%s 0 %s\n" % (proc.stdout.strip(), os.readlink("/proc/self/ns/pid"))


def test_a_private_directory_is_0700_and_removed_after_use(engine, tmp_path):
    scratch = engine.scratch
    with scratch.PrivateDir("globals", str(tmp_path)) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700 and os.path.basename(path).startswith("lifeboat-globals-")
        assert open(os.path.join(path, ".owner")).read().split()[0] == str(os.getpid())
    assert not os.path.exists(path)


def test_a_secret_file_lives_in_memory_only(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    scratch = engine.scratch
    secret = scratch.SecretFile("lifeboat-pgpass", "*:*:*:*:hunter2\n")
    try:
        assert secret.path.startswith("/proc/%d/fd/" % os.getpid())
        info = os.stat(secret.path)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600  # what libpq insists on
        assert open(secret.path).read() == "*:*:*:*:hunter2\n"
        assert os.listdir(str(tmp_path)) == []
    finally:
        path = secret.path
        secret.close()
    assert not os.path.exists(path)
