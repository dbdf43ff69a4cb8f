"""make demo's script end to end (small shop): it succeeds, reports matching row counts, and leaves nothing behind,
also when it is killed half way."""

import os
import re
import signal
import subprocess
import time

from conftest import REPO, VENV_BIN

DEMO = [os.path.join(VENV_BIN, "python"), os.path.join(REPO, "scripts", "demo.py"), "--payments", "3000"]


def cluster_dir(output):
    match = re.search(r"PostgreSQL on 127\.0\.0\.1:(\d+) \(data in (\S+)\)", output)
    assert match, output
    return int(match.group(1)), os.path.dirname(match.group(2))


def work_dir(output):
    match = re.search(r"^identity (\S+)/demo-identity.txt \(0600\)", output, re.M)
    assert match, output
    return match.group(1)


def server_running(port):
    """True when a postgres process still listens on ``port`` (its pid file names the port)."""
    proc = subprocess.run(["pgrep", "-f", "postgres.*-p %d " % port], capture_output=True, text=True, check=False)
    return proc.returncode == 0


def test_demo_runs_and_cleans_up():
    proc = subprocess.run(DEMO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    port, base = cluster_dir(out)
    for profile in ("payments", "orders_tickets", "full"):
        assert re.search(r"^%s\s+\d{8}T\d{6}Z\S*\s+.*ok in .*ok in" % profile, out, re.M), profile
    rows = re.findall(r"^(\S+)\s+(public\.\w+)\s+(\d+)\s+(\d+)$", out, re.M)
    assert {(p, t) for p, t, _s, _r in rows} >= {("payments", "public.payments"), ("full", "public.users"), ("orders_tickets", "public.tickets")}
    assert all(source == restored for _p, _t, source, restored in rows), rows
    assert ("full", "public.payments", "3000", "3000") in rows
    assert not os.path.exists(base) and not server_running(port)
    assert not os.path.exists(work_dir(out))


def test_killed_demo_still_removes_its_cluster():
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    deadline = time.time() + 300
    while "==> ansible-playbook" not in seen and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert "==> ansible-playbook" in seen, seen
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    port, base = cluster_dir(seen)
    assert "Stopped and removed the demo cluster" in rest, rest
    assert not os.path.exists(base) and not server_running(port)
    assert not os.path.exists(work_dir(seen))
