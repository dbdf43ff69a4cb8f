"""Benchmark: lifeboat against raw pg_dump and community.postgresql.postgresql_db, side by side.

Starts a throwaway PostgreSQL cluster (fsync on, as in production), generates
a realistic shop database (scripts/bench_data.py) at --size-mb and a smaller
one at --small-mb, then runs every command below in each round, in an order
rotated per round so none always runs first or last:

  floor            pg_dump -Fc -Z0 db > /dev/null (extraction alone)
  pgdb_pgc         community.postgresql.postgresql_db state=dump target=.pgc (ansible-playbook)
  pgdb_sqlgz       the same with a .sql.gz target (pg_dump | pigz, or gzip without pigz)
  lifeboat_module  lifeboat.backup.dump (ansible-playbook), zstd + age
  lifeboat_cli     lifeboat backup (the CLI), zstd + age
  lifeboat_cli_level2  the same with compression_level 2 (the size/time trade-off)
  lifeboat_cli_nosample  the same with content_sample: false (what the drill's content sample costs the dump)
  floor_socket / lifeboat_cli_socket  the floor and the CLI over the local Unix socket (the agent's
                   default connection) instead of TCP to 127.0.0.1
  *_small          the two lifeboat dumps of the small database (engine memory at a second size)
  ansible_noop     ansible-playbook running ansible.builtin.ping (Ansible's own start-up cost)
  pg_restore_j2    createdb + pg_restore -j2 of the .pgc file
  lifeboat_restore_cli / _module   lifeboat restore with jobs 2 (decrypts, then pg_restore -j2)
  lifeboat_verify  lifeboat verify --level archive (decrypt, decompress, pg_restore the whole archive)

After the rounds, each section in SECTIONS (scripts/bench_<section>.py: drill, rotation, monitoring) measures
its own feature against its own targets on the same cluster and prints its own table; --only SECTION runs only
that section, without the rounds, for working on it.

Before each command: sync and CHECKPOINT (untimed), so nobody pays for the
previous command's writes. Each command must succeed, and each restore must
hold every payment row, or the benchmark stops. Ratios are taken per round
(same round, same conditions) and their median is judged against the targets.

    .venv/bin/python scripts/bench.py [--size-mb 1024] [--rounds 5] [--quick] [--keep] [--only SECTION]
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from scripts import bench_data, bench_run, pgcluster  # noqa: E402

VENV_BIN = os.path.join(REPO, ".venv", "bin")
MIB = 1048576.0
MB = 1000000.0  # the unit for verify throughput

DUMPS = ["floor", "pgdb_pgc", "pgdb_sqlgz", "lifeboat_module", "lifeboat_cli", "lifeboat_cli_level2",
         "lifeboat_cli_nosample", "floor_socket", "lifeboat_cli_socket", "lifeboat_module_small", "lifeboat_cli_small", "ansible_noop"]
RESTORES = ["pg_restore_j2", "lifeboat_restore_cli", "lifeboat_restore_module"]
CHECKS = ["lifeboat_verify"]
# Each is scripts/bench_<name>.py with run(bench) -> [row(...)] (see row below). Sections run after the rounds, on
# the same cluster; in --quick they must stay small (the smoke test runs them).
SECTIONS = ("drill", "rotation", "monitoring")

TARGETS = {
    "lifeboat_cli_vs_floor": ("lifeboat backup (CLI) / floor", "<=", 1.15),
    "lifeboat_socket_vs_floor_socket": ("lifeboat backup (CLI) / floor, both over the local socket", "<=", 1.15),
    "pgdb_pgc_vs_lifeboat_module": ("postgresql_db .pgc / lifeboat.backup.dump (speed-up)", ">=", 3.0),
    "artifact_vs_pgc": ("lifeboat database artifact / postgresql_db .pgc (size)", "<=", 1.0),
    "restore_cli_vs_pg_restore": ("lifeboat restore jobs=2 (CLI) / pg_restore -j2", "<=", 1.05),
    "verify_mb_per_s": ("archive verify, MB/s (10^6 bytes) of artifact", ">=", 250.0),
    "engine_peak_mib": ("engine peak RSS, MiB (largest of CLI and module, both sizes)", "<=", 100.0),
    "engine_peak_growth": ("engine peak RSS at full size / small size", "<=", 1.10),
}


def log(text):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def _write(path, data, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


def _tool(name):
    path = shutil.which(name)
    if not path:
        raise SystemExit("bench: %s is not installed (run scripts/bootstrap.sh test)" % name)
    return path


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])

    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return None

    return {
        "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1048576.0, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "postgresql": version([os.path.join(pgcluster.bin_dir(), "postgres"), "--version"]),
        "zstd": version(["zstd", "--version"]), "age": version(["age", "--version"]),
        "gzip_tool": "pigz" if shutil.which("pigz") else "gzip",
        "loadavg_start": os.getloadavg(),
    }


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
        os.chmod(self.workdir, 0o755)  # the server (OS user postgres) needs to reach its data directory inside
        self.out = os.path.join(self.workdir, "out")
        self.backup_root = os.path.join(self.workdir, "backups")
        os.makedirs(self.out, mode=0o700)
        self.cluster = None
        self.restores = 0

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self):
        log("cluster in %s (fsync on)" % self.workdir)
        self.cluster = pgcluster.create(os.path.join(self.workdir, "pg"), fast=False)
        self.bin = pgcluster.bin_dir()
        identity = os.path.join(self.workdir, "identity.txt")
        subprocess.run([_tool("age-keygen"), "-o", identity], check=True, capture_output=True)
        self.identity = identity
        self.recipient = subprocess.run([_tool("age-keygen"), "-y", identity], check=True, capture_output=True,
                                        text=True).stdout.strip()
        self.passfile = _write(os.path.join(self.workdir, "pgpass"), "127.0.0.1:%d:*:postgres:%s\n" % (self.cluster.port, self.cluster.password))
        self.pg_env = dict(os.environ, PGPASSFILE=self.passfile, PGHOST="127.0.0.1", PGPORT=str(self.cluster.port), PGUSER="postgres")
        self.socket_env = dict(self.pg_env, PGHOST=self.cluster.socket_dir)
        self.data = {}
        for db, size in (("bench", self.args.size_mb), ("bench_small", self.args.small_mb)):
            log("generating %s (about %d MiB)" % (db, size))
            self.data[db] = bench_data.create(self.cluster, db, size, log=log)
        self.config = _write(os.path.join(self.workdir, "lifeboat.yml"), {
            "connection": self.cluster.connection(),
            "backup_root": self.backup_root,
            "encryption": {"mode": "age", "recipients": [self.recipient]},
            "profiles": {"bench": {"db": "bench"}, "bench_small": {"db": "bench_small"},
                         "bench_level2": {"db": "bench", "compression_level": 2},
                         "bench_nosample": {"db": "bench", "content_sample": False}},
        })
        over_socket = self.cluster.connection(login_unix_socket=self.cluster.socket_dir)
        del over_socket["login_host"]
        self.socket_config = _write(os.path.join(self.workdir, "lifeboat-socket.yml"), {
            "connection": over_socket, "backup_root": self.backup_root,
            "encryption": {"mode": "age", "recipients": [self.recipient]}, "profiles": {"bench": {"db": "bench"}},
        })
        # Hosts run the engine from bytecode the agent role compiles; a first CLI run must not pay for compiling it.
        subprocess.run([os.path.join(VENV_BIN, "python"), "-m", "compileall", "-q", os.path.join(REPO, "plugins", "module_utils")],
                       check=True)
        self.vars = _write(os.path.join(self.workdir, "vars.json"), dict(
            ("bench_%s" % k, v) for k, v in self.cluster.connection().items()))
        conn = dict((k, "{{ bench_%s }}" % k) for k in self.cluster.connection())
        self.playbooks = {
            "pgdb": self._playbook("pgdb", "community.postgresql.postgresql_db",
                                   dict(conn, name="{{ db }}", state="dump", target="{{ target }}")),
            "dump": self._playbook("dump", "lifeboat.backup.dump",
                                   dict(conn, db="{{ db }}", profile="{{ db }}", backup_root=self.backup_root,
                                        recipients=[self.recipient])),
            "restore": self._playbook("restore", "lifeboat.backup.restore",
                                      dict(conn, db="{{ target }}", profile="bench", backup_root=self.backup_root,
                                           identity_file=self.identity, jobs=2)),
            "noop": self._playbook("noop", "ansible.builtin.ping", {}),
        }
        self.ansible_env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
            ANSIBLE_CONFIG=os.path.join(REPO, "tests", "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"),
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            ANSIBLE_PIPELINING="0",  # the module runs from its AnsiballZ file, so its process can be found by name
            PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        )

    def _playbook(self, name, module, args):
        play = [{"name": "bench %s" % name, "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "tasks": [{"name": "Run %s" % module, module: args}]}]
        return _write(os.path.join(self.workdir, "%s.yml" % name), json.dumps(play, indent=1))

    def teardown(self):
        if self.args.keep:
            log("kept %s (cluster on port %d, stop it with: %s scripts/pgcluster.py stop --dir %s)"
                % (self.workdir, self.cluster.port if self.cluster else 0, sys.executable, os.path.join(self.workdir, "pg")))
            return
        if self.cluster:
            self.cluster.destroy()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------
    def _settle(self):
        """Untimed: flush what earlier commands wrote, so the next one starts from the same state."""
        subprocess.run(["sync"], check=True)
        self.cluster.psql("CHECKPOINT")

    def _server_cpu(self):
        """CPU used by the whole PostgreSQL server so far (postmaster, its live and its finished processes)."""
        with open(os.path.join(self.cluster.info["data"], "postmaster.pid")) as handle:
            return bench_run.tree_cpu_seconds(int(handle.readline()))

    def _playbook_run(self, name, engine=None, **extra):
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", self.playbooks[name], "-e", "@" + self.vars]
        if extra:
            extra_vars = _write(os.path.join(self.workdir, "extra.json"), extra)
            argv += ["-e", "@" + extra_vars]
        outcome = bench_run.run(argv, env=self.ansible_env, engine=engine)
        try:
            document = json.loads(outcome.stdout[outcome.stdout.index("{"):])
            result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise RuntimeError("ansible-playbook %s: output not understood (exit %d): %s %s"
                               % (name, outcome.rc, outcome.stdout[-2000:], outcome.stderr[-2000:]))
        if outcome.rc != 0 or result.get("failed"):
            raise RuntimeError("ansible-playbook %s failed: %s" % (name, result.get("msg") or outcome.stderr[-2000:]))
        return outcome, result

    def _cli(self, *args, config=None):
        argv = [os.path.join(VENV_BIN, "python"), os.path.join(REPO, "bin", "lifeboat"), "--config", config or self.config, "--json"]
        outcome = bench_run.run(argv + list(args), engine="self").check("lifeboat %s" % args[0])
        return outcome, json.loads(outcome.stdout.strip().splitlines()[-1])

    def _keep_newest_backup(self, profile, path):
        folder = os.path.join(self.backup_root, profile)
        for name in os.listdir(folder):
            full = os.path.join(folder, name)
            if os.path.isdir(full) and full != path and not name.startswith("."):
                shutil.rmtree(full)

    @staticmethod
    def _backup_sizes(backup):
        database = [a for a in backup["artifacts"] if a["kind"] == "database"][0]
        return {"bytes": database["bytes"], "total_bytes": backup["bytes"], "engine_seconds": backup["duration_seconds"]}

    def _check_restored(self, db):
        got = int(self.cluster.psql("SELECT count(*) FROM payments", db=db).strip())
        want = self.data["bench"]["rows"]["payments"]
        if got != want:
            raise RuntimeError("restore into %s holds %d payments, the source %d" % (db, got, want))
        self.cluster.psql('DROP DATABASE "%s" WITH (FORCE)' % db)

    def _target_db(self):
        self.restores += 1
        return "bench_restore_%d" % self.restores

    # -- the measured commands: each returns a dict with at least seconds ---------------------
    def _floor(self, env):
        argv = [os.path.join(self.bin, "pg_dump"), "-Fc", "-Z0", "--no-password", "--dbname=bench"]
        outcome = bench_run.run(argv, env=env, discard_stdout=True).check("pg_dump")
        return {"seconds": outcome.seconds, "cpu_seconds": outcome.cpu_seconds}

    def m_floor(self):
        return self._floor(self.pg_env)

    def m_floor_socket(self):
        return self._floor(self.socket_env)

    def _pgdb(self, suffix):
        target = os.path.join(self.out, "bench" + suffix)
        if os.path.exists(target):
            os.unlink(target)
        outcome = self._playbook_run("pgdb", db="bench", target=target)[0]
        return {"seconds": outcome.seconds, "cpu_seconds": outcome.cpu_seconds, "bytes": os.path.getsize(target)}

    def m_pgdb_pgc(self):
        return self._pgdb(".pgc")

    def m_pgdb_sqlgz(self):
        return self._pgdb(".sql.gz")

    def _module_dump(self, db):
        outcome, result = self._playbook_run("dump", engine="AnsiballZ_dump.py", db=db)
        self._keep_newest_backup(db, result["backup"]["path"])
        return dict(self._backup_sizes(result["backup"]), **_engine(outcome))

    def _cli_dump(self, db, config=None):
        outcome, result = self._cli("backup", "--profile", db, config=config)
        self._keep_newest_backup(db, result["path"])
        return dict(self._backup_sizes(result), **_engine(outcome))

    def m_lifeboat_module(self):
        return self._module_dump("bench")

    def m_lifeboat_cli(self):
        return self._cli_dump("bench")

    def m_lifeboat_cli_level2(self):
        return self._cli_dump("bench_level2")

    def m_lifeboat_cli_nosample(self):
        return self._cli_dump("bench_nosample")

    def m_lifeboat_cli_socket(self):
        return self._cli_dump("bench", config=self.socket_config)

    def m_lifeboat_module_small(self):
        return self._module_dump("bench_small")

    def m_lifeboat_cli_small(self):
        return self._cli_dump("bench_small")

    def m_ansible_noop(self):
        outcome = self._playbook_run("noop")[0]
        return {"seconds": outcome.seconds, "cpu_seconds": outcome.cpu_seconds}

    def m_pg_restore_j2(self):
        db = self._target_db()
        create = bench_run.run([os.path.join(self.bin, "createdb"), "--no-password", "--template=template0", db],
                               env=self.pg_env).check("createdb")
        restore = bench_run.run([os.path.join(self.bin, "pg_restore"), "--jobs=2", "--exit-on-error", "--no-password",
                                 "--dbname=%s" % db, os.path.join(self.out, "bench.pgc")], env=self.pg_env).check("pg_restore")
        return {"seconds": create.seconds + restore.seconds, "cpu_seconds": create.cpu_seconds + restore.cpu_seconds,
                "after": lambda: self._check_restored(db)}

    def m_lifeboat_restore_cli(self):
        db = self._target_db()
        outcome, result = self._cli("restore", "--profile", "bench", "--target", db, "--jobs", "2", "--identity", self.identity)
        return dict(_engine(outcome), timings=result["timings"], after=lambda: self._check_restored(db))

    def m_lifeboat_restore_module(self):
        db = self._target_db()
        outcome, result = self._playbook_run("restore", engine="AnsiballZ_restore.py", target=db)
        return dict(_engine(outcome), timings=result["restore"]["timings"], after=lambda: self._check_restored(db))

    def m_lifeboat_verify(self):
        outcome, result = self._cli("verify", "--profile", "bench", "--level", "archive", "--identity", self.identity)
        return dict(_engine(outcome), bytes=result["bytes"], engine_seconds=result["duration_seconds"])

    # -- rounds -----------------------------------------------------------------------------------
    def rounds(self):
        runs = dict((name, []) for name in DUMPS + RESTORES + CHECKS)
        for index in range(self.args.rounds):
            order = _rotate(DUMPS, index) + _rotate(RESTORES, index) + CHECKS
            for name in order:
                self._settle()
                server_before = self._server_cpu()
                measured = getattr(self, "m_" + name)()
                time.sleep(0.3)  # the postmaster adds a backend's CPU to its own when it reaps it, a moment after the exit
                measured["server_cpu_seconds"] = round(self._server_cpu() - server_before, 3)
                measured.pop("after", lambda: None)()  # untimed checks and clean-up
                measured["round"] = index + 1
                runs[name].append(measured)
                size = ("  %.1f MiB" % (measured["bytes"] / MIB)) if "bytes" in measured else ""
                log("round %d %-24s %7.2fs%s" % (index + 1, name, measured["seconds"], size))
        return runs


def _engine(outcome):
    return {"seconds": outcome.seconds, "cpu_seconds": outcome.cpu_seconds, "engine_peak_kib": outcome.engine_peak_kib,
            "engine_cpu_seconds": outcome.engine_cpu_seconds}


def _rotate(items, n):
    n %= len(items)
    return items[n:] + items[:n]


def _stats(runs):
    seconds = [r["seconds"] for r in runs]
    out = {"min_seconds": round(min(seconds), 3), "median_seconds": round(statistics.median(seconds), 3),
           "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
           "server_cpu_seconds_median": round(statistics.median(r["server_cpu_seconds"] for r in runs), 3)}
    if "bytes" in runs[0]:
        out["bytes"] = int(statistics.median(r["bytes"] for r in runs))
    peaks = [r["engine_peak_kib"] for r in runs if r.get("engine_peak_kib")]
    if peaks:
        out["engine_peak_mib"] = round(max(peaks) / 1024.0, 1)
        out["engine_cpu_seconds_median"] = round(statistics.median(r["engine_cpu_seconds"] for r in runs), 3)
    return out


def _per_round(runs, top, bottom, measure=lambda r: r["seconds"]):
    """Per round, ``measure`` of top over the wall time of bottom in the same round."""
    by_round = dict((r["round"], r["seconds"]) for r in runs[bottom])
    return [measure(r) / by_round[r["round"]] for r in runs[top] if r["round"] in by_round]


def _paired(runs, top, bottom):
    """Per-round ratio top/bottom: median over rounds, and the ratio of the best times."""
    ratios = _per_round(runs, top, bottom)
    best = min(r["seconds"] for r in runs[top]) / min(r["seconds"] for r in runs[bottom])
    return {"median": round(statistics.median(ratios), 3), "of_min": round(best, 3), "per_round": [round(x, 3) for x in ratios]}


def _cpu_ratio(runs, top, bottom):
    """Client plus server CPU seconds, top/bottom: what each costs the host, whatever else runs on it."""
    def cpu(name):
        return statistics.median(r["cpu_seconds"] + r["server_cpu_seconds"] for r in runs[name])
    return {"median": round(cpu(top) / cpu(bottom), 3)}


def _cpu_limit(runs, top, bottom):
    """Per round, the shortest wall time top's CPU (client + server) allows on this machine's cores, over bottom's
    wall time: how close to the floor any scheduling of the same work could come."""
    limits = _per_round(runs, top, bottom, lambda r: (r["cpu_seconds"] + r["server_cpu_seconds"]) / os.cpu_count())
    return {"median": round(statistics.median(limits), 3)}


def summarize(runs):
    stats = dict((name, _stats(items)) for name, items in runs.items())
    ratios = {
        "lifeboat_cli_vs_floor": _paired(runs, "lifeboat_cli", "floor"),
        "lifeboat_module_vs_floor": _paired(runs, "lifeboat_module", "floor"),
        "lifeboat_level2_vs_floor": _paired(runs, "lifeboat_cli_level2", "floor"),
        "lifeboat_nosample_vs_floor": _paired(runs, "lifeboat_cli_nosample", "floor"),
        "lifeboat_cli_vs_nosample": _paired(runs, "lifeboat_cli", "lifeboat_cli_nosample"),
        "lifeboat_socket_vs_floor_socket": _paired(runs, "lifeboat_cli_socket", "floor_socket"),
        "pgdb_pgc_vs_lifeboat_module": _paired(runs, "pgdb_pgc", "lifeboat_module"),
        "pgdb_pgc_vs_lifeboat_cli": _paired(runs, "pgdb_pgc", "lifeboat_cli"),
        "pgdb_sqlgz_vs_lifeboat_module": _paired(runs, "pgdb_sqlgz", "lifeboat_module"),
        "restore_cli_vs_pg_restore": _paired(runs, "lifeboat_restore_cli", "pg_restore_j2"),
        "restore_module_vs_pg_restore": _paired(runs, "lifeboat_restore_module", "pg_restore_j2"),
    }
    ratios["lifeboat_cli_cpu_vs_floor"] = _cpu_ratio(runs, "lifeboat_cli", "floor")
    ratios["lifeboat_cli_cpu_limit_vs_floor"] = _cpu_limit(runs, "lifeboat_cli", "floor")
    ratios["lifeboat_socket_cpu_limit_vs_floor_socket"] = _cpu_limit(runs, "lifeboat_cli_socket", "floor_socket")
    verify = runs["lifeboat_verify"]
    speeds = [r["bytes"] / MB / r["seconds"] for r in verify]
    ratios["verify_mb_per_s"] = {"median": round(statistics.median(speeds), 1), "best": round(max(speeds), 1),
                                 "mib_per_s": round(statistics.median(speeds) * MB / MIB, 1),
                                 "engine_only_median": round(statistics.median(r["bytes"] / MB / r["engine_seconds"] for r in verify), 1)}
    ratios["artifact_vs_pgc"] = {"median": round(stats["lifeboat_cli"]["bytes"] / float(stats["pgdb_pgc"]["bytes"]), 4)}
    ratios["artifact_level2_vs_pgc"] = {"median": round(stats["lifeboat_cli_level2"]["bytes"] / float(stats["pgdb_pgc"]["bytes"]), 4)}
    peaks_full = [stats[n]["engine_peak_mib"] for n in ("lifeboat_cli", "lifeboat_module")]
    peaks_small = [stats[n]["engine_peak_mib"] for n in ("lifeboat_cli_small", "lifeboat_module_small")]
    growth = max(f / s for f, s in zip(peaks_full, peaks_small))
    ratios["engine_peak_mib"] = {"median": max(peaks_full + peaks_small)}
    ratios["engine_peak_growth"] = {"median": round(growth, 3)}
    targets = {}
    for key, (label, op, limit) in TARGETS.items():
        value = ratios[key]["median"]
        targets[key] = {"label": label, "value": value, "limit": "%s %s" % (op, limit),
                        "met": value <= limit if op == "<=" else value >= limit}
    return stats, ratios, targets


LABELS = {
    "floor": "pg_dump -Fc -Z0 > /dev/null (floor)",
    "pgdb_pgc": "postgresql_db state=dump .pgc",
    "pgdb_sqlgz": "postgresql_db state=dump .sql.gz",
    "lifeboat_module": "lifeboat.backup.dump (Ansible)",
    "lifeboat_cli": "lifeboat backup (CLI)",
    "lifeboat_cli_level2": "lifeboat backup, compression_level 2",
    "lifeboat_cli_nosample": "lifeboat backup, content_sample false",
    "floor_socket": "floor over the local socket",
    "lifeboat_cli_socket": "lifeboat backup (CLI) over the local socket",
    "lifeboat_module_small": "lifeboat.backup.dump, small db",
    "lifeboat_cli_small": "lifeboat backup, small db",
    "ansible_noop": "ansible-playbook ping (overhead)",
    "pg_restore_j2": "createdb + pg_restore -j2 of .pgc",
    "lifeboat_restore_cli": "lifeboat restore --jobs 2 (CLI)",
    "lifeboat_restore_module": "lifeboat.backup.restore jobs=2",
    "lifeboat_verify": "lifeboat verify --level archive",
}


RATIO_LABELS = {
    "lifeboat_module_vs_floor": "lifeboat.backup.dump (Ansible) / floor",
    "lifeboat_level2_vs_floor": "lifeboat backup at compression_level 2 / floor",
    "lifeboat_nosample_vs_floor": "lifeboat backup without the drill's content sample / floor",
    "lifeboat_cli_vs_nosample": "lifeboat backup / the same without the content sample (what the sample costs)",
    "artifact_level2_vs_pgc": "artifact at compression_level 2 / postgresql_db .pgc (size)",
    "lifeboat_cli_cpu_vs_floor": "CPU seconds (client + server): lifeboat backup / floor",
    "lifeboat_cli_cpu_limit_vs_floor": "lower limit: lifeboat backup's CPU (client + server) / cores / floor wall time",
    "lifeboat_socket_cpu_limit_vs_floor_socket": "the same lower limit, both over the local socket",
    "pgdb_pgc_vs_lifeboat_cli": "postgresql_db .pgc / lifeboat backup (CLI) (speed-up)",
    "pgdb_sqlgz_vs_lifeboat_module": "postgresql_db .sql.gz / lifeboat.backup.dump (speed-up)",
    "restore_module_vs_pg_restore": "lifeboat.backup.restore jobs=2 (Ansible) / pg_restore -j2",
}


def table(report):
    stats, ratios, targets = report["results"], report["ratios"], report["targets"]
    lines = ["| command | min s | median s | client CPU s | server CPU s | engine CPU s | output MiB | engine peak MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in DUMPS + RESTORES + CHECKS:
        s = stats[name]
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |" % (
            LABELS[name], s["min_seconds"], s["median_seconds"], s["cpu_seconds_median"], s["server_cpu_seconds_median"],
            s.get("engine_cpu_seconds_median", ""), "%.1f" % (s["bytes"] / MIB) if "bytes" in s else "", s.get("engine_peak_mib", "")))
    lines += ["", "| ratio (median of per-round ratios; ratio of best times) | value | target | met |", "|---|---:|---:|---|"]
    for key, item in sorted(ratios.items()):
        target = targets.get(key)
        extra = ("; %s" % item["of_min"]) if "of_min" in item else ""
        if key == "verify_mb_per_s":
            extra = "; best %s; %s MiB/s; engine only %s" % (item["best"], item["mib_per_s"], item["engine_only_median"])
        lines.append("| %s | %s%s | %s | %s |" % (
            target["label"] if target else RATIO_LABELS[key], item["median"], extra,
            target["limit"] if target else "", ("yes" if target["met"] else "NO") if target else ""))
    return "\n".join(lines)


def row(key, label, value, limit=None, detail=""):
    """One line of a section's table; limit is "<= 1.1" or ">= 50", judged here."""
    met = None
    if limit is not None:
        op, bound = limit.split()
        met = value <= float(bound) if op == "<=" else value >= float(bound)
    return {"key": key, "label": label, "value": value, "limit": limit, "met": met, "detail": detail}


def run_sections(bench, names):
    found = {}
    for name in names:
        log("section %s" % name)
        found[name] = importlib.import_module("scripts.bench_" + name).run(bench)
    return found


def section_table(name, rows):
    lines = ["| %s | value | target | met |" % name, "|---|---:|---:|---|"]
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        detail = ("; " + row["detail"]) if row.get("detail") else ""
        lines.append("| %s | %s%s | %s | %s |" % (row["label"], row["value"], detail, row["limit"] or "", met))
    return "\n".join(lines)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, help="size of the main database (default 1024; --quick: 24)")
    parser.add_argument("--small-mb", type=int, help="size of the second database for memory (default size/4)")
    parser.add_argument("--rounds", type=int, help="rounds of every command (default 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny databases and one round: checks the machinery only")
    parser.add_argument("--keep", action="store_true", help="keep the cluster, databases and artifacts")
    parser.add_argument("--workdir", default="/var/tmp", help="where the cluster and artifacts go (default %(default)s)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "bench-results"), help="where the JSON report goes")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section, without the rounds (repeatable)")
    args = parser.parse_args(argv)
    args.size_mb = args.size_mb or (24 if args.quick else 1024)
    args.small_mb = args.small_mb or max(8, args.size_mb // 4)
    args.rounds = args.rounds or (1 if args.quick else 5)
    return args


def main(argv=None):
    args = parse(argv)
    # Installed Python programs load cached bytecode; a development shell that forbids writing it would
    # charge every lifeboat run for compiling the engine, which no host does.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("zstd", "age", "age-keygen"):
        _tool(name)
    info = machine()
    if info["loadavg_start"][0] > 0.5 * (info["cores"] or 1):
        log("warning: load average %.2f on %d cores: other work will slow some commands down" % (info["loadavg_start"][0], info["cores"]))
    bench = Bench(args)
    started = time.time()
    try:
        bench.setup()
        runs = {} if args.only else bench.rounds()
        sections = run_sections(bench, args.only or SECTIONS)
    finally:
        bench.teardown()
    stats, ratios, targets = summarize(runs) if runs else ({}, {}, {})
    info["loadavg_end"] = os.getloadavg()
    report = {
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": info,
        "settings": {"size_mb": args.size_mb, "small_mb": args.small_mb, "rounds": args.rounds, "quick": args.quick,
                     "fsync": True, "compression": "engine default (zstd level 3, minMatch 6, chainLog 15), threads one per core, at most 4",
                     "encryption": "age, 1 recipient"},
        "databases": bench.data,
        "results": stats,
        "ratios": ratios,
        "targets": targets,
        "sections": sections,
        "all_targets_met": all(t["met"] for t in targets.values())
        and all(row["met"] is not False for rows in sections.values() for row in rows),
        "runs": runs,
        "seconds": round(time.time() - started, 1),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "bench-%s.json" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    with open(path, "w") as handle:
        json.dump(report, handle, indent=1, sort_keys=True)
    if runs:
        print(table(report))
    for name, rows in sections.items():
        print("\n" + section_table(name, rows))
    print("\n%d cores (%s), database %.0f MiB and %.0f MiB, %d rounds, load %.2f -> %.2f; JSON: %s" % (
        info["cores"], info["cpu"], bench.data["bench"]["bytes"] / MIB, bench.data["bench_small"]["bytes"] / MIB,
        args.rounds, info["loadavg_start"][0], info["loadavg_end"][0], path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
