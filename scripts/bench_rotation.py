"""Bench section ``rotation``: new connections at a fixed rate while lifeboat rotates their role's password.

An application role ``bench_app`` (strategy alternate: NOLOGIN group, logins ``bench_app_a``/``bench_app_b``)
gets its first credential from ``lifeboat rotate-password`` before anything is measured; its consumer is an env
file (``PGUSER``/``PGPASSWORD``). Then scripts/connload.py opens RATE new connections per second on a fixed
schedule, each re-reading the env file, connecting over TCP, running ``SELECT 1`` and disconnecting, in windows of
WINDOW seconds: one without rotation and one during which ``lifeboat rotate-password --force`` runs again and
again (each next run once the last one's grace has passed, so it also disables the login it had left in grace), in
each of ROUNDS rounds, the order alternated, after an unmeasured warm-up and with sync + CHECKPOINT before each
window. The clients are the same in both windows; only the rotation differs.
"""

import os
import statistics
import threading
import time

from scripts import connload
from scripts.bench import _write, log, row

ROLE = "bench_app"
LOGINS = ("%s_a" % ROLE, "%s_b" % ROLE)
DB = "bench"
RATE = 60  # connections per second offered; the target is >= 50 achieved
WORKERS = 8  # threads: a slow connection must not hold back the next one's start
ROUNDS = 2
GRACE_SECONDS = 2  # the old login keeps working this long; the next rotation disables it
TEST_SQL = "has_database_privilege(current_database(), 'CONNECT')"


class _Rotator:
    """Runs ``lifeboat rotate-password`` for the role, never sooner than the last run's grace allows."""

    def __init__(self, bench, config, env):
        self.bench, self.config, self.env = bench, config, env
        self.last_end = None
        self.runs = []  # (seconds, active login, retired login, CPU seconds)

    def rotate(self):
        if self.last_end is not None:
            wait = self.last_end + GRACE_SECONDS + 0.3 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        outcome, result = self.bench._cli(
            "rotate-password", "--role", ROLE, "--strategy", "alternate", "--force", "--grace", "%ds" % GRACE_SECONDS,
            "--consumer", "env:%s" % self.env, "--db", DB, "--test", TEST_SQL, config=self.config)
        self.last_end = time.monotonic()
        if not result.get("rotated") or result.get("active_login") not in LOGINS:
            raise RuntimeError("lifeboat rotate-password did not rotate %s: %s" % (ROLE, result))
        self.runs.append((outcome.seconds, result["active_login"], result.get("retired_login"), outcome.cpu_seconds))
        return outcome.seconds

    def next_possible(self):
        return (self.last_end or 0) + GRACE_SECONDS + 0.3


def _window(bench, env, seconds, rotator=None):
    """One window of load; with ``rotator``, rotations run inside it (each ending before the window does)."""
    load = connload.Load(env, bench.cluster.port, DB, seconds, rate=RATE, workers=WORKERS)
    result = {}
    thread = threading.Thread(target=lambda: result.update(load.run()), daemon=True)
    start = time.monotonic()
    thread.start()
    rotations = 0
    if rotator is not None:
        end = start + seconds
        time.sleep(min(1.0, 0.15 * seconds))  # some connections first, with the credential from before
        longest = 0.0
        while True:
            longest = max(longest, rotator.rotate())
            rotations += 1
            if rotator.next_possible() + longest + 0.5 > end:  # the next one would not end inside the window
                break
    thread.join()
    result["rotations"] = rotations
    return result


def run(bench):
    seconds = 3.0 if bench.args.quick else 20.0
    work = os.path.join(bench.workdir, "rotation")
    os.makedirs(work, mode=0o700)
    env = os.path.join(work, "%s.env" % ROLE)
    config = _write(os.path.join(work, "lifeboat.yml"), {  # no profiles: an application role, not the backup user
        "connection": bench.cluster.connection(), "backup_root": os.path.join(work, "backups"),
        "encryption": {"mode": "none"}})
    bench.cluster.psql("CREATE ROLE %s NOLOGIN" % ROLE)
    try:
        rotator = _Rotator(bench, config, env)
        rotator.rotate()  # creates the logins and writes the env file the clients read
        _window(bench, env, min(2.0, seconds / 2))  # warm-up, not measured: the first window must not pay for it
        windows = {"plain": [], "rotating": []}
        for number in range(ROUNDS):
            order = ("plain", "rotating") if number % 2 == 0 else ("rotating", "plain")
            for kind in order:
                bench._settle()  # untimed, as before every bench command: earlier writes are not this window's
                log("rotation: round %d, window %s (%.0f s at %d/s)" % (number + 1, kind, seconds, RATE))
                windows[kind].append(_window(bench, env, seconds, rotator if kind == "rotating" else None))
    finally:
        bench.cluster.psql("DROP ROLE IF EXISTS %s" % ", ".join(LOGINS + (ROLE,)))
    return _rows(windows, rotator, seconds)


def _median(values):
    return round(statistics.median(values), 2) if values else "-"


def _rows(windows, rotator, seconds):
    plain, rotating = windows["plain"], windows["rotating"]
    rotations = sum(w["rotations"] for w in rotating)
    logins = sorted(set(user for w in rotating for user, _password in w["seen"]))
    credentials = len(set(tuple(pair) for w in rotating for pair in w["seen"]))
    durations = [r[0] for r in rotator.runs[1:]]
    cpu = [r[3] for r in rotator.runs[1:]]
    retired = sum(1 for r in rotator.runs[1:] if r[2])

    def failed(kind):
        items = windows[kind]
        errors = [e for w in items for e in w["errors"]]
        return sum(w["failed"] for w in items), ("first error: %s" % errors[0]) if errors else ""

    def p99(items):
        return round(statistics.median(w["connect_ms"]["p99"] for w in items), 2)

    def rate_detail(items):
        return "per window %s; latest start against the schedule %s ms" % (
            ", ".join(str(w["per_second"]) for w in items), max(w["late_ms"]["max"] for w in items))

    ratios = [round(r["connect_ms"]["p99"] / p["connect_ms"]["p99"], 3) for p, r in zip(plain, rotating)]
    rotated_failed, rotated_error = failed("rotating")
    plain_failed, plain_error = failed("plain")
    scope = "%d windows of %.0f s at %d/s, %d threads" % (len(rotating), seconds, RATE, WORKERS)
    return [
        row("failed_logins_rotating", "failed logins during rotation", rotated_failed, "<= 0",
            "; ".join(p for p in ("%d rotations (median %s s, %s s CPU each), %d logins disabled after their %d s grace" % (
                rotations, _median(durations), _median(cpu), retired, GRACE_SECONDS),
                "%d connections; clients used %s with %d credentials" % (
                    sum(w["ok"] + w["failed"] for w in rotating), ", ".join(logins), credentials),
                rotated_error) if p)),
        row("failed_logins_plain", "failed logins without rotation", plain_failed, None,
            "; ".join(p for p in ("%d connections" % sum(w["ok"] + w["failed"] for w in plain), plain_error) if p)),
        row("per_second_plain", "connections/s achieved without rotation (slowest window)",
            min(w["per_second"] for w in plain), ">= 50", rate_detail(plain)),
        row("per_second_rotating", "connections/s achieved during rotation (slowest window)",
            min(w["per_second"] for w in rotating), ">= 50", rate_detail(rotating)),
        row("connect_p99_plain_ms", "p99 connect latency without rotation, ms (median of windows)", p99(plain), None,
            "%s; p50 %s ms" % (scope, statistics.median(w["connect_ms"]["p50"] for w in plain))),
        row("connect_p99_rotating_ms", "p99 connect latency during rotation, ms (median of windows)", p99(rotating), None,
            "p50 %s ms; max %s ms" % (statistics.median(w["connect_ms"]["p50"] for w in rotating),
                                      max(w["connect_ms"]["max"] for w in rotating))),
        row("connect_p99_ratio", "p99 connect latency during / without rotation (median of rounds)",
            round(statistics.median(ratios), 3), "<= 1.5", "per round %s" % ", ".join(str(r) for r in ratios)),
    ]
