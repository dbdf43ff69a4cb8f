"""Programs die with the engine: kill -9 of a process running a pipeline takes its steps and their own children."""

import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# An engine process: runs one pipeline whose step starts a grandchild (as pg_restore --jobs forks its workers).
ENGINE = r"""
import importlib.machinery, importlib.util, sys
spec = importlib.machinery.ModuleSpec("lifeboat_engine", None, is_package=True)
spec.submodule_search_locations = [sys.argv[1] + "/plugins/module_utils"]
sys.modules["lifeboat_engine"] = importlib.util.module_from_spec(spec)
pipeline = importlib.import_module("lifeboat_engine._stream.pipeline")
worker = ("import os, subprocess, time; p = subprocess.Popen(['sleep', %r]); "
          "open(%r, 'w').write('%%d %%d' %% (os.getpid(), p.pid)); time.sleep(float(%r)); p.wait()"
          % (sys.argv[3], sys.argv[2], sys.argv[3]))
pipeline.run([pipeline.Step("leader", [sys.executable, "-c", worker])])
print(pipeline._children._guard[0].pid)
"""


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_kill_9_of_the_engine_kills_its_steps_and_their_children(tmp_path):
    out = tmp_path / "pids"
    engine = subprocess.Popen([sys.executable, "-c", ENGINE, REPO, str(out), "300"])
    pids = []
    try:
        assert wait_until(lambda: out.exists() and len(out.read_text().split()) == 2), "the step never started its child"
        pids = [int(pid) for pid in out.read_text().split()]  # the step, and the child it started
        assert all(alive(pid) for pid in pids)
        os.kill(engine.pid, signal.SIGKILL)  # the named point: the step is running, its child too
        engine.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in pids)), "a program outlived the engine"
    finally:
        for pid in [engine.pid] + pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_the_guard_ends_with_the_engine(tmp_path):
    """After a normal end the guard has nothing left to kill, and goes too."""
    run = subprocess.run([sys.executable, "-c", ENGINE, REPO, str(tmp_path / "pids"), "0"], capture_output=True,
                         text=True, timeout=120, check=True)
    guard = int(run.stdout.split()[-1])
    assert wait_until(lambda: not alive(guard), 30)
