"""Bench section drill: ``lifeboat drill`` (CLI, source offsite) against the same steps done by hand with stock tools.

A real S3 endpoint (SeaweedFS, as the integration tests start it) holds one backup of the bench profile, taken with
``lifeboat backup`` and pushed with ``lifeboat push`` (untimed). Then, per round, in an order alternated per round:

  drill   lifeboat drill --profile bench --identity ... --report-dir ... --tmp-dir ... (the drill's default checks:
          row counts and freshness, amcheck on every B-tree index, the content sample; jobs 2)
  stock   python + boto3 downloading every object of the backup; age -d | zstd -d to a file; createdb and
          pg_restore -j2 --no-owner; psql with the drill's count queries; then, timed apart, psql with the drill's
          amcheck and content-sample queries; dropdb and rm (the drill's teardown)

Row 1 compares the drill with the stock steps without the optional checks (what the issue names); row 2 with the
stock steps plus the same amcheck and content sample, like for like. The drill cannot turn those checks off.
"""

import json
import os
import shutil
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from scripts import bench_run  # noqa: E402
from scripts.bench import VENV_BIN, log, row  # noqa: E402

SOURCE_HOST = "bench-source"
STOCK_DB = "bench_drill_stock"

# The stock side's download, as someone would write it: list the backup's objects, download each with boto3.
FETCH = r"""
import json, os, sys
import boto3
from botocore.config import Config
spec = json.load(open(sys.argv[1]))
client = boto3.client("s3", endpoint_url=spec["endpoint"], aws_access_key_id=spec["key"], aws_secret_access_key=spec["secret"],
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
pages = client.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=spec["prefix"])
for page in pages:
    for item in page.get("Contents") or []:
        client.download_file(spec["bucket"], item["Key"], os.path.join(spec["dest"], item["Key"].rsplit("/", 1)[-1]))
"""

# The drill's B-tree list (plugins/module_utils/_actions/drill.py), every index checked as the drill checks it.
AMCHECK = """
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT count(bt_index_check(c.oid::regclass, heapallindexed => true))
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am ON am.oid = c.relam
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%';
"""

# The drill's content-sample query (plugins/module_utils/_postgres/tables.py, _sample_sql).
SAMPLE = ("SELECT count(*) FILTER (WHERE {b}), "
          "coalesce(sum(('x' || left(md5(row_to_json(lifeboat_row)::text), 15))::bit(60)::int8::numeric) FILTER (WHERE {b}), 0)::text "
          "FROM ONLY {t} AS lifeboat_row;")


def _ident(name):
    return '"%s"' % name.replace('"', '""')


def _qualified(table):
    return "%s.%s" % (_ident(table["schema"]), _ident(table["name"]))


class Drill:
    def __init__(self, bench):
        self.bench = bench
        self.dir = os.path.join(bench.workdir, "drill")
        self.work = os.path.join(self.dir, "work")  # both sides download and decrypt here (same file system)
        os.makedirs(self.work, mode=0o700)
        self.reports = os.path.join(self.dir, "reports")
        self.s3 = None
        self.counter = 0

    def start(self):
        from seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS  # tests/integration: the integration tests' own server

        log("drill: starting SeaweedFS")
        self.s3 = SeaweedFS(os.path.join(self.dir, "seaweed")).start()
        self.bucket = self.s3.bucket()
        self.creds = (ACCESS_KEY, SECRET_KEY)
        self.config = os.path.join(self.dir, "lifeboat-drill.yml")
        with open(os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            json.dump({
                "connection": self.bench.cluster.connection(), "backup_root": os.path.join(self.dir, "backups"),
                "host": SOURCE_HOST, "report_dir": self.reports,
                "encryption": {"mode": "age", "recipients": [self.bench.recipient]},
                "offsite": self.s3.target(self.bucket),
                "profiles": {"bench": {"db": "bench", "drill": {"jobs": 2}}},  # checks: the drill's defaults only
            }, handle)

    def back_up_and_push(self):
        started = time.time()
        _outcome, backup = self.bench._cli("backup", "--profile", "bench", config=self.config)
        self.bench._cli("push", "--profile", "bench", config=self.config)
        self.id = backup.get("id") or backup["backup"]["id"]
        keys = [k for k in self.s3.keys(self.bucket) if "/%s/" % self.id in k]
        self.prefix = keys[0].rsplit("/", 1)[0] + "/"
        log("drill: backup %s pushed (%d objects under %s) in %.1fs" % (self.id, len(keys), self.prefix, time.time() - started))

    # -- the two sides -------------------------------------------------------------------------------------------------
    def m_drill(self):
        outcome, result = self.bench._cli("drill", "--profile", "bench", "--identity", self.bench.identity,
                                          "--report-dir", self.reports, "--tmp-dir", self.work, config=self.config)
        result = result["drills"][0]
        if not result.get("ok"):
            raise RuntimeError("drill failed: %s" % json.dumps(result)[:2000])
        if os.listdir(self.work):
            raise RuntimeError("the drill left files in %s: %s" % (self.work, os.listdir(self.work)))
        return {"seconds": outcome.seconds, "cpu_seconds": outcome.cpu_seconds,
                "stages": dict((k, v["seconds"]) for k, v in result["stages"].items()),
                "checks": dict((c["name"], c["detail"]) for c in result["checks"])}

    def _run(self, argv, what, **kwargs):
        outcome = bench_run.run(argv, env=self.bench.pg_env, **kwargs).check(what)
        return outcome

    def _psql(self, sql, db):
        argv = [os.path.join(self.bench.bin, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", db, "-c", sql]
        return self._run(argv, "psql")

    def m_stock(self):
        self.counter += 1
        db = "%s_%d" % (STOCK_DB, self.counter)
        dest = os.path.join(self.work, "stock")
        os.makedirs(dest, mode=0o700)
        spec = os.path.join(self.dir, "fetch.json")
        with open(os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            json.dump({"endpoint": self.s3.endpoint, "key": self.creds[0], "secret": self.creds[1], "bucket": self.bucket,
                       "prefix": self.prefix, "dest": dest}, handle)
        steps = {}
        began = time.monotonic()
        steps["fetch"] = self._run([os.path.join(VENV_BIN, "python"), "-c", FETCH, spec], "boto3 download").seconds
        manifest = json.load(open(os.path.join(dest, "manifest.json")))
        database = [a for a in manifest["artifacts"] if a["kind"] == "database"][0]
        encrypted = os.path.join(dest, os.path.basename(database["file"] if "file" in database else database["name"]))
        plain = os.path.join(dest, "bench.dump")
        steps["decrypt"] = self._run(["bash", "-o", "pipefail", "-c", 'age -d -i "$1" "$2" | zstd -d -q -o "$3"', "decrypt",
                                      self.bench.identity, encrypted, plain], "age -d | zstd -d").seconds
        steps["restore"] = (self._run([os.path.join(self.bench.bin, "createdb"), "--no-password", db], "createdb").seconds
                            + self._run([os.path.join(self.bench.bin, "pg_restore"), "-j2", "--no-owner", "--no-password",
                                         "-d", db, plain], "pg_restore").seconds)
        tables = manifest["tables"]
        counts = self._psql(" ".join("SELECT count(*) FROM ONLY %s;" % _qualified(t) for t in tables), db)
        steps["counts"] = counts.seconds
        got = [int(x) for x in counts.stdout.split()]
        if got != [t["rows"] for t in tables]:
            raise RuntimeError("stock restore counts %s, the manifest %s" % (got, [t["rows"] for t in tables]))
        checks_began = time.monotonic()
        self._psql(AMCHECK, db)
        sampled = [t for t in tables if t.get("sample")]
        sql = "BEGIN READ ONLY; SET TimeZone TO 'UTC'; %s COMMIT;" % " ".join(
            SAMPLE.format(b="(hashtext(ROW(%s)::text) & 15) = 0" % ", ".join("lifeboat_row.%s" % _ident(c) for c in t["sample"]["key"]),
                          t=_qualified(t)) for t in sampled)
        found = [line.split("|") for line in self._psql(sql, db).stdout.split() if "|" in line]
        steps["checks"] = time.monotonic() - checks_began
        want = [[str(t["sample"]["rows"]), t["sample"]["digest"]] for t in sampled]
        if found != want:
            raise RuntimeError("stock content sample %s, the manifest %s" % (found, want))
        teardown_began = time.monotonic()
        self._run([os.path.join(self.bench.bin, "dropdb"), "--no-password", "--force", db], "dropdb")
        shutil.rmtree(dest)
        steps["teardown"] = time.monotonic() - teardown_began
        total = time.monotonic() - began
        return {"seconds": total - steps["checks"], "with_checks_seconds": total, "steps": steps}

    def stop(self):
        try:
            leftovers = self.bench.cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'lifeboat_drill_%%' "
                                                "OR datname LIKE '%s_%%'" % STOCK_DB).split()
            for name in leftovers:
                self.bench.cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        finally:
            if self.s3:
                self.s3.kill()  # scratch data only; a SIGTERM'd weed takes about 25 s to exit, too long for --quick
            shutil.rmtree(self.dir, ignore_errors=True)


def _median(values):
    return round(statistics.median(values), 3)


def run(bench):
    drill = Drill(bench)
    runs = {"drill": [], "stock": []}
    try:
        drill.start()
        drill.back_up_and_push()
        for index in range(bench.args.rounds):
            order = ["drill", "stock"] if index % 2 == 0 else ["stock", "drill"]
            for name in order:
                bench._settle()
                measured = getattr(drill, "m_" + name)()
                runs[name].append(measured)
                log("drill round %d %-6s %7.2fs" % (index + 1, name, measured["seconds"]))
    finally:
        drill.stop()
    ratios = [d["seconds"] / s["seconds"] for d, s in zip(runs["drill"], runs["stock"])]
    # The checks the stock steps skip are server scans; spread over every core they take at least their one-session
    # time / cores, so the drill cannot beat the stock steps plus that.
    limits = [(s["seconds"] + s["steps"]["checks"] / os.cpu_count()) / s["seconds"] for s in runs["stock"]]
    like = [d["seconds"] / s["with_checks_seconds"] for d, s in zip(runs["drill"], runs["stock"])]
    drill_s, stock_s = _median([r["seconds"] for r in runs["drill"]]), _median([r["seconds"] for r in runs["stock"]])
    stock_checks_s = _median([r["with_checks_seconds"] for r in runs["stock"]])
    stages = dict((k, _median([r["stages"][k] for r in runs["drill"]])) for k in runs["drill"][0]["stages"])
    steps = dict((k, _median([r["steps"][k] for r in runs["stock"]])) for k in runs["stock"][0]["steps"])
    checks = runs["drill"][0]["checks"]
    beyond = ("the drill also ran amcheck (%s) and the content sample (%s), wrote its JSON/Markdown/HTML report and copied it "
              "to the bucket, audit line and metrics" % (checks.get("amcheck"), checks.get("content sample")))
    return [
        row("drill_vs_stock", "lifeboat drill (CLI, offsite) / stock steps (boto3, age -d and zstd -d, pg_restore -j2, counts, teardown)",
            _median(ratios), "<= 1.10", "drill %.2f s, stock %.2f s; %s; per round %s"
            % (drill_s, stock_s, beyond, [round(x, 3) for x in ratios])),
        row("drill_vs_stock_limit", "lower limit: (stock steps + their amcheck and content sample / cores) / stock steps",
            _median(limits), None, "what the drill's own checks cost on %d cores at best; the drill measured %.3f"
            % (os.cpu_count(), _median(ratios))),
        row("drill_vs_stock_checks", "lifeboat drill / the same stock steps plus amcheck and the content sample by hand (psql)",
            _median(like), "<= 1.10", "drill %.2f s, stock with checks %.2f s (its checks %.2f s, the drill's checks stage %.2f s); "
            "per round %s" % (drill_s, stock_checks_s, steps["checks"], stages["checks"], [round(x, 3) for x in like])),
        row("drill_seconds", "lifeboat drill wall time, median s (its stages)", drill_s, None,
            ", ".join("%s %.2f" % item for item in stages.items())),
        row("stock_seconds", "stock steps wall time, median s (each step)", stock_s, None,
            ", ".join("%s %.2f" % item for item in steps.items()) + " (checks not in the stock total of row 1)"),
    ]
