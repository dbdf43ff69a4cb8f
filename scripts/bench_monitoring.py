"""Bench section ``monitoring``: what a Prometheus scrape of the monitoring role's two exporters costs.

A cluster of its own (the bench cluster does not preload pg_stat_statements; restarting it would disturb the other
sections), started by scripts/monitoring_stack.py as tests/integration/test_monitoring.py starts it, with
``pg_stat_statements.max`` = 10000 so that 5,000 statements and the exporter's own fit without eviction. Five
databases each run 1,000 distinct statement shapes (``SELECT c<i> + c<j> FROM t``) against a one-row table: 5,000
distinct queryids. Debian's exporters run as the prometheus user behind the role's web configuration (TLS, bcrypt
basic auth), each as the role runs it, and each beside a variant without lifeboat's part, so that part is measured
by difference in the same rounds:

  pg_role        prometheus-postgres-exporter with --extend.query-path=roles/monitoring/files/postgres_queries.yml
  pg_plain       the same exporter without the custom queries (its own metrics only)
  node_role      prometheus-node-exporter with Debian's default collectors and the textfile directory (the role's args)
  node_textfile  the same with only the textfile collector

The textfile directory holds the files of 20 profiles, written by the engine's metric writer
(plugins/module_utils/_report/metrics.py) in the order a day's backup, verify, prune and push write them. Each round
scrapes each endpoint once over a new HTTPS connection with basic auth (what Prometheus does, plus the TLS handshake
it saves by keeping connections), in an order rotated per round, after unmeasured warm-up scrapes; scrape time is
request to last byte. Server CPU per scrape: the whole server's (postmaster and every backend, live or reaped) before
and 0.3 s after each scrape, so the exporter's backends are reaped and counted; its mean over the rounds (the clock
ticks at 10 ms), and the difference between pg_role and pg_plain, the cost of collecting the statements.
"""

import grp
import importlib.machinery
import importlib.util
import os
import pwd
import secrets
import statistics
import subprocess
import sys
import time

from scripts import bench_run, monitoring_stack
from scripts.bench import REPO, log, row

PROFILES = 20
DATABASES = 5
SHAPES = (50, 20)  # SELECT c<i> + c<j> FROM t: 50 x 20 distinct statements per database
STATEMENTS = DATABASES * SHAPES[0] * SHAPES[1]
MAX_STATEMENTS = 10000  # pg_stat_statements.max: the 5,000 and the exporter's own, no eviction
LOGIN = "lifeboat_monitor"
SCRAPER = "scraper"
PAUSE = 0.3  # after each scrape: the postmaster adds a reaped backend's CPU to its own a moment after it exits
KINDS = ("pg_role", "pg_plain", "node_role", "node_textfile")


def _engine_metrics():
    """The engine's metric writer, loaded as the lifeboat command loads the engine."""
    if "lifeboat_engine" not in sys.modules:
        path = os.path.join(REPO, "bin", "lifeboat")
        loader = importlib.machinery.SourceFileLoader("lifeboat_launcher", path)
        launcher = importlib.util.module_from_spec(importlib.util.spec_from_loader("lifeboat_launcher", loader))
        loader.exec_module(launcher)
        launcher.load_engine()
    return importlib.import_module("lifeboat_engine._report.metrics")


def write_textfiles(metrics_dir, profiles=PROFILES, now=None):
    """The files of ``profiles`` profiles after a day of backups: backup, verify, prune and push each wrote theirs."""
    metrics = _engine_metrics()
    now = now or time.time()
    for number in range(profiles):
        profile, database = "profile_%02d" % number, "shop_%02d" % number
        finished = now - 3600 * (number % 24) - 60 * number
        size = 50 * 1048576 * (number + 1)
        if number % 7 == 3:  # a few profiles failed once: their counters are not zero
            metrics.update(metrics_dir, profile, database, values={"lifeboat_backup_last_attempt_timestamp_seconds": finished - 86400,
                                                                   "lifeboat_backup_last_run_success": 0},
                           increment=["lifeboat_backup_failures_total"])
        metrics.update(metrics_dir, profile, database, values={
            "lifeboat_backup_last_success_timestamp_seconds": finished, "lifeboat_backup_last_attempt_timestamp_seconds": finished - 95.5,
            "lifeboat_backup_last_run_success": 1, "lifeboat_backup_duration_seconds": 95.5 + number,
            "lifeboat_backup_size_bytes": size})
        metrics.update(metrics_dir, profile, database, values={"lifeboat_verify_last_success_timestamp_seconds": finished + 120})
        metrics.update(metrics_dir, profile, database, values={"lifeboat_prune_last_success_timestamp_seconds": finished + 180,
                                                               "lifeboat_prune_kept_backups": 14},
                       increment={"lifeboat_prune_deleted_total": 30 + number})
        metrics.update(metrics_dir, profile, database, values={
            "lifeboat_offsite_last_success_timestamp_seconds": finished + 240, "lifeboat_offsite_last_backup_timestamp_seconds": finished - 95.5,
            "lifeboat_offsite_bytes": size})
    return sorted(name for name in os.listdir(metrics_dir) if name.endswith(".prom"))


def _statements(cluster, base):
    """5,000 distinct statements: DATABASES databases, SHAPES[0] x SHAPES[1] query shapes each, run once."""
    columns = ", ".join("c%d int" % i for i in range(SHAPES[0]))
    script = os.path.join(base, "statements.sql")
    with open(script, "w") as handle:
        for i in range(SHAPES[0]):
            for j in range(SHAPES[1]):
                handle.write("SELECT c%d + c%d FROM t;\n" % (i, j))
    for number in range(DATABASES):
        db = "app_%d" % number
        cluster.psql("CREATE DATABASE %s" % db)
        cluster.psql("CREATE TABLE t (%s); INSERT INTO t SELECT %s" % (columns, ", ".join(str(i) for i in range(SHAPES[0]))), db=db)
        subprocess.run([os.path.join(cluster.info["bin_dir"], "psql"), "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1",
                        "-h", cluster.socket_dir, "-p", str(cluster.port), "-U", "postgres", "-d", db, "-f", script],
                       check=True, capture_output=True)
    return _tracked(cluster)


def _tracked(cluster):
    """Distinct statements of the app databases in pg_stat_statements, and the deallocations so far."""
    counts = cluster.psql("SELECT count(*) FILTER (WHERE d.datname LIKE 'app\\_%'), (SELECT dealloc FROM pg_stat_statements_info), "
                          "count(*) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid").strip().split("|")
    return dict(zip(("app", "dealloc", "all"), (int(c) for c in counts)))


def _server_cpu(cluster):
    with open(os.path.join(cluster.info["data"], "postmaster.pid")) as handle:
        return bench_run.tree_cpu_seconds(int(handle.readline()))


def _check(kind, body):
    """The scrape holds what it is measured for; anything else stops the benchmark."""
    if kind == "pg_role":
        top = sum(1 for line in body.splitlines() if line.startswith("lifeboat_pg_statement_top_calls{"))
        statements = sum(float(line.split()[-1]) for line in body.splitlines()
                         if line.startswith("lifeboat_pg_statements_statements{") and 'datname="app_' in line)
        if top != 10 or statements < STATEMENTS:
            raise RuntimeError("postgres_exporter with the role's queries: %d top statements, %d statements (want 10, %d)"
                               % (top, statements, STATEMENTS))
    elif kind == "pg_plain":
        if "pg_up 1" not in body or "lifeboat_pg_" in body:
            raise RuntimeError("postgres_exporter without the role's queries: not up, or lifeboat's metrics in it")
    else:
        profiles = sum(1 for line in body.splitlines() if line.startswith("lifeboat_backup_last_run_success{"))
        if profiles != PROFILES or "node_textfile_scrape_error 0" not in body:
            raise RuntimeError("node_exporter (%s): %d profiles in the textfiles (want %d), or a textfile error" % (kind, profiles, PROFILES))


def _preflight():
    missing = monitoring_stack.missing()
    if missing:
        raise SystemExit("bench monitoring: %s not installed (Debian's prometheus-node-exporter and prometheus-postgres-exporter: "
                         "run scripts/bootstrap.sh test)" % ", ".join(missing))
    if os.geteuid() != 0:
        raise SystemExit("bench monitoring: must run as root (the exporters run as the %s user through setpriv)" % monitoring_stack.USER)
    try:
        return pwd.getpwnam(monitoring_stack.USER), grp.getgrnam(monitoring_stack.USER)
    except KeyError:
        raise SystemExit("bench monitoring: no %s user or group (Debian's exporter packages create them)" % monitoring_stack.USER)


def run(bench):
    user, group = _preflight()
    rounds = 5 if bench.args.quick else 30
    base = os.path.join(bench.workdir, "monitoring")
    os.mkdir(base)
    os.chmod(base, 0o755)  # the exporters reach their files inside as the prometheus user
    stack = monitoring_stack.Exporters(base)
    cluster = monitoring_stack.stats_cluster(os.path.join(base, "pg"), {"pg_stat_statements.max": MAX_STATEMENTS}, fast=False)
    try:
        tracked = _statements(cluster, base)
        if tracked["app"] < STATEMENTS:
            raise RuntimeError("pg_stat_statements holds %d of the %d statements" % (tracked["app"], STATEMENTS))
        password = secrets.token_urlsafe(18)
        cluster.psql("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE pg_monitor" % (LOGIN, password))
        passfile = os.path.join(base, "monitor.pass")
        monitoring_stack.private(passfile, password + "\n", user)
        stack.web_config(SCRAPER, secrets.token_urlsafe(18))

        metrics_dir = os.path.join(base, "metrics")  # as the role leaves it: setgid, the exporter's group, nothing for others
        os.mkdir(metrics_dir)
        os.chown(metrics_dir, 0, group.gr_gid)
        os.chmod(metrics_dir, 0o2750)
        files = write_textfiles(metrics_dir)
        textfile_bytes = sum(os.path.getsize(os.path.join(metrics_dir, name)) for name in files)

        endpoints = {}
        for kind in KINDS:
            if kind.startswith("pg_"):
                address = stack.postgres_exporter(cluster, LOGIN, passfile, queries=monitoring_stack.QUERIES if kind == "pg_role" else None,
                                                  name=kind)
            else:
                address = stack.node_exporter(metrics_dir, collectors=None if kind == "node_role" else ("textfile",), name=kind)
            endpoints[kind] = ("https://%s/metrics" % address, stack.procs[-1].pid)
        for kind in KINDS:
            stack.wait_up(endpoints[kind][0].split("/")[2])
            for _warm_up in range(2):  # connections to the server, the basic-auth cache, the first query plans
                _check(kind, stack.get(endpoints[kind][0])[1])
        log("monitoring: %d statements tracked, %d textfiles (%d bytes); %d rounds of %s"
            % (tracked["app"], len(files), textfile_bytes, rounds, ", ".join(KINDS)))

        scrapes = dict((kind, []) for kind in KINDS)
        for number in range(rounds):
            order = KINDS[number % len(KINDS):] + KINDS[:number % len(KINDS)]
            for kind in order:
                url, pid = endpoints[kind]
                server, exporter = _server_cpu(cluster), bench_run.tree_cpu_seconds(pid)
                started = time.perf_counter()
                status, body = stack.get(url)
                seconds = time.perf_counter() - started
                time.sleep(PAUSE)
                _check(kind, body)
                scrapes[kind].append({"ms": seconds * 1000, "server_cpu": _server_cpu(cluster) - server,
                                      "exporter_cpu": bench_run.tree_cpu_seconds(pid) - exporter,
                                      "bytes": len(body), "samples": sum(1 for line in body.splitlines() if line and line[0] != "#")})
        after = _tracked(cluster)
    finally:
        stack.stop()
        cluster.destroy()
    return _rows(scrapes, tracked, after, files, textfile_bytes)


def _ms(items):
    values = sorted(s["ms"] for s in items)
    return round(statistics.median(values), 1), round(values[int(0.9 * (len(values) - 1))], 1), round(values[-1], 1)


def _mean(items, key):
    return statistics.mean(s[key] for s in items)


def _rows(scrapes, tracked, after, files, textfile_bytes):
    pg, plain, node, textfile = (scrapes[k] for k in KINDS)
    count = len(pg)
    pg_ms, plain_ms, node_ms, textfile_ms = _ms(pg), _ms(plain), _ms(node), _ms(textfile)
    server, server_plain = _mean(pg, "server_cpu"), _mean(plain, "server_cpu")
    scope = "%d scrapes, a new HTTPS connection with basic auth each" % count
    return [
        row("pg_scrape_ms", "postgres_exporter scrape with the role's queries, {:,} statements, ms (median)".format(STATEMENTS), pg_ms[0], "<= 250",
            "%s; p90 %s, max %s; %d samples, %d bytes; without the role's queries %s ms; exporter CPU %.1f ms per scrape; "
            "%d statements in pg_stat_statements (%d at the end, %d deallocations)" % (
                scope, pg_ms[1], pg_ms[2], pg[-1]["samples"], pg[-1]["bytes"], plain_ms[0], 1000 * _mean(pg, "exporter_cpu"),
                tracked["all"], after["all"], after["dealloc"])),
        row("node_scrape_ms", "node_exporter scrape, the role's collectors and the textfiles of %d profiles, ms (median)" % PROFILES,
            node_ms[0], "<= 50", "%s; p90 %s, max %s; %d samples, %d bytes; exporter CPU %.1f ms per scrape; %d files, %d bytes" % (
                scope, node_ms[1], node_ms[2], node[-1]["samples"], node[-1]["bytes"], 1000 * _mean(node, "exporter_cpu"),
                len(files), textfile_bytes)),
        row("node_textfile_scrape_ms", "node_exporter scrape, textfile collector alone, %d profiles, ms (median)" % PROFILES,
            textfile_ms[0], None, "p90 %s, max %s; %d samples; exporter CPU %.1f ms per scrape" % (
                textfile_ms[1], textfile_ms[2], textfile[-1]["samples"], 1000 * _mean(textfile, "exporter_cpu"))),
        row("pg_server_cpu_per_scrape", "server CPU seconds per postgres_exporter scrape with the role's queries (mean)",
            round(server, 4), None, "without the role's queries %.4f s; mean of %d scrapes, 10 ms clock ticks" % (server_plain, count)),
        row("pg_statements_cpu_per_scrape",
            "server CPU seconds per scrape for collecting the {:,} statements (with - without the role's queries)".format(STATEMENTS),
            round(server - server_plain, 4), None,
            "the two queries of postgres_queries.yml over pg_stat_statements(false)"),
    ]
