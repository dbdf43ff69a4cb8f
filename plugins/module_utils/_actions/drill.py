# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disaster-recovery drill: restore a profile's backup on a host that never saw it, check it, measure RTO and RPO.

Stages, each timed: **select** the backup (newest complete in the bucket under the source host's prefix, a given
id, or a random one within the retention window), **fetch** it (sizes and SHA-256 against the manifest, through
``pull``), **restore** it into ``lifeboat_drill_<profile>_<time>`` through the restore engine, **checks** (row counts
and freshness against the manifest, amcheck on every B-tree index, the content sample taken at dump time, the
profile's own SQL checks), **teardown** (scratch database and every downloaded or decrypted file; also on failure and
SIGTERM unless ``keep``). RTO is drill start to checks passed; RPO is drill start minus the backup's consistent
point. Then the report (``_report/drill_report``, locally and in the bucket), the audit line, the metrics and the
webhook. A missed objective fails with ObjectiveError once everything is recorded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import concurrent.futures
import os
import secrets
import tempfile
import time

from .._config.schema import get_profile, parse_duration
from .._errors import ConfigError, DatabaseError, LifeboatError, NotFoundError, ObjectiveError, RestoreError, VerifyError
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._postgres import session as _pg
from .._postgres import tables as _tables
from .._report import drill_report as _report
from .._report import metrics as _metrics
from .._report import notify as _notify
from .._store import catalog as _catalog
from .._store import manifest as _manifest
from .._store.files import remove_tree
from .._stream import artifacts as _artifacts
from .._version import ENGINE_VERSION
from . import pull as _pull
from . import restore as _restore
from . import verify as _verify
from .operation import Operation

STAGES = ("select", "fetch", "restore", "checks", "teardown")
SOURCES = ("offsite", "local")
PICKS = ("newest", "random")
LOCAL_NOTE = ("read from this host's own backup directory, not from the bucket: this proves less than an offsite "
              "drill (the copy a disaster leaves you with was not tested)")


class Options:
    """What the operator asked for; None means the profile's ``drill`` section decides."""

    DEFAULTS = {"backup_id": None, "pick": None, "source": None, "source_host": None, "identity_file": None, "jobs": None,
                "keep": False, "report_dir": None, "tmp_dir": None, "check_mode": False}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.DEFAULTS))
        if unknown:
            raise TypeError("unknown drill options: %s" % ", ".join(unknown))
        for name, default in self.DEFAULTS.items():
            setattr(self, name, options.get(name, default))


def settings(config, profile, options):
    """The profile's drill section with the options given for this run on top, checked."""
    merged = dict(get_profile(config, profile)["drill"])
    for key in ("pick", "source", "source_host", "jobs"):
        if getattr(options, key) is not None:
            merged[key] = getattr(options, key)
    merged["source_host"] = _remote.check_host(merged.get("source_host") or config["host"])
    if merged["source"] not in SOURCES:
        raise ConfigError("source: must be offsite or local, got %r" % merged["source"])
    if merged["pick"] not in PICKS:
        raise ConfigError("pick: must be newest or random, got %r" % merged["pick"])
    if options.backup_id and options.pick == "random":
        raise ConfigError("give either a backup id or pick random, not both")
    if merged["jobs"] < 1:
        raise ConfigError("jobs: must be at least 1, got %d" % merged["jobs"])
    merged["report_dir"] = options.report_dir or config["report_dir"]
    merged["objectives"] = dict((name, merged.get(name + "_objective")) for name in ("rto", "rpo") if merged.get(name + "_objective"))
    return merged


def scratch_name(profile, started):
    """A new name per run (63 bytes at most): two drills in the same second never share, or drop, one database."""
    return "lifeboat_drill_%s_%s_%s" % (profile.replace("-", "_")[:24].lower(), time.strftime("%Y%m%d_%H%M%S", time.gmtime(started)),
                                        secrets.token_hex(2))


# -- select ----------------------------------------------------------------------------------------------------------

class _Selected:
    """The backup a drill uses: its manifest, where it lies, and how to fetch it."""

    def __init__(self, backup_id, manifest, size, location):
        self.id, self.manifest, self.size, self.location = backup_id, manifest, size, location


def _window(config, profile):
    """The retention window a random pick stays inside: keep_within of the remote (else the profile's) policy."""
    policies = [get_profile(config, profile).get("retention") or {}]
    offsite = (get_profile(config, profile).get("offsite") or {}).get("retention") or (config.get("offsite") or {}).get("retention")
    policies.insert(0, offsite or {})
    for policy in policies:
        if policy.get("keep_within"):
            return parse_duration(policy["keep_within"])
    return None


def _pick(candidates, how, backup_id, window, now, where):
    if backup_id:
        found = [c for c in candidates if c[0] == backup_id]
        if not found:
            raise _not_found("backup %s is not a complete backup in %s" % (backup_id, where))
        return found[0]
    if not candidates:
        raise _not_found("no complete backup in %s" % where)
    if how == "newest":
        return candidates[-1]
    inside = [c for c in candidates if window is None or c[1] >= now - window]
    if not inside:
        raise _not_found("no complete backup within the retention window (%ds) in %s" % (window, where))
    return secrets.SystemRandom().choice(inside)


def _not_found(message):
    return NotFoundError(message)


def select(config, profile, drill, options, now):
    """The backup to drill, from the bucket (the source host's prefix) or this host's backup root."""
    window = _window(config, profile) if drill["pick"] == "random" else None
    if drill["source"] == "local":
        backups = _catalog.complete_backups(config["backup_root"], profile)
        where = _catalog.profile_dir(config["backup_root"], profile)
        candidates = [(e.id, e.time, e) for e in backups if e.manifest["host"] == drill["source_host"]]
        entry = _pick(candidates, drill["pick"], options.backup_id, window, now, where)[2]
        return _Selected(entry.id, entry.manifest, entry.size, entry.path)
    section = _remote.target(config, profile)
    loc = _remote.Location(section, drill["source_host"], profile)
    remote = _s3.Remote(section)
    if options.backup_id:
        found = _remote.find(remote, loc, options.backup_id)
    else:
        complete = [(b.id, b.time, b) for b in _remote.scan(remote, loc) if b.status == _catalog.COMPLETE]
        found = _pick(complete, drill["pick"], None, window, now, remote.url(loc.base))[2]
    return _Selected(found.id, found.manifest, found.size, remote.url(loc.prefix(found.id)))


# -- the run -----------------------------------------------------------------------------------------------------------

def plan(config, profile, options):
    """Which backup, from where, into which scratch database, with which checks: touches nothing (check mode)."""
    now = time.time()
    drill = settings(config, profile, options)
    chosen = select(config, profile, drill, options, now)
    return _plan_of(config, profile, drill, chosen, now)


def _plan_of(config, profile, drill, chosen, now):
    return {
        "profile": profile,
        "backup_id": chosen.id,
        "source": drill["source"],
        "source_host": drill["source_host"],
        "location": chosen.location,
        "consistent_at": chosen.manifest["consistent_at"],
        "bytes": chosen.size,
        "scratch_database": scratch_name(profile, now),
        "jobs": drill["jobs"],
        "checks": ["row counts and freshness", "amcheck", "content sample"] + [c["name"] for c in drill["checks"]],
        "objectives": dict(drill["objectives"]),
        "report_dir": drill["report_dir"],
        "drill_host": config["host"],
    }


def drill(config, profile, options, via="module"):
    """Run one drill; returns the result (``ok`` True) or raises the error that failed it, after recording it."""
    if options.check_mode:
        return dict(plan(config, profile, options), changed=False, ok=None, check_mode=True)
    run = _Run(config, profile, options, via)
    return run.execute()


class _Run:
    def __init__(self, config, profile, options, via):
        self.config, self.profile, self.options, self.via = config, profile, options, via
        self.started = time.time()
        self.drill = settings(config, profile, options)
        self.scratch = scratch_name(profile, self.started)
        self.stages = dict((name, {"seconds": None, "outcome": "not run"}) for name in STAGES)
        self.checks = []
        self.chosen = self.workdir = None
        self.scratch_owned = False
        self.rto = self.checks_passed_at = None
        self.warnings = []
        self.failed_result = None

    def _stage(self, name, action):
        began = time.time()
        try:
            value = action()
        except BaseException as exc:
            self.stages[name] = {"seconds": round(time.time() - began, 3), "outcome": _outcome(exc)}
            raise
        self.stages[name] = {"seconds": round(time.time() - began, 3), "outcome": "ok"}
        return value

    def execute(self):
        operation = Operation(self.config, "drill", "drill profile %s" % self.profile, self.via, profile=self.profile,
                              target=self.scratch)
        try:
            return self._execute(operation)
        except LifeboatError as exc:
            exc.drill = self.failed_result  # what the report says, for a module's failed result
            raise

    def _execute(self, operation):
        error = document = None
        with operation as op:
            try:
                self.chosen = self._stage("select", lambda: select(self.config, self.profile, self.drill, self.options, self.started))
                op.audit(backup_id=self.chosen.id, database=self.chosen.manifest["database"])
                self.workdir = tempfile.mkdtemp(prefix="lifeboat-drill-", dir=self.options.tmp_dir)
                entry = self._stage("fetch", self._fetch)
                self._stage("restore", lambda: self._restore(entry))
                self._stage("checks", self._run_checks)
                self.checks_passed_at = time.time()
                self.rto = round(self.checks_passed_at - self.started, 3)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._teardown()
                document = self._record(error, op)
                self.failed_result = self._result(document)
            op.audit(detail="rto %.1fs, rpo %.1fs" % (self.rto, document["rpo_seconds"]))
            if _missed(document):
                raise ObjectiveError(_missed(document))
        return dict(self._result(document), changed=True, warnings=self.warnings + op.warnings)

    # -- stages ----------------------------------------------------------------------------------------------------------

    def _fetch(self):
        if self.drill["source"] == "local":
            entry = _catalog.resolve(path=self.chosen.location)
            for item in entry.manifest["artifacts"]:
                _artifacts.checksum(entry, item)
            return entry
        try:
            fetched = _pull.pull(self.config, self.profile, self.chosen.id, self.drill["source_host"],
                                 dest=os.path.join(self.workdir, "backups"), via=self.via)
        except LifeboatError as exc:
            raise VerifyError("fetch of backup %s failed: %s" % (self.chosen.id, _cause(exc)))
        return _catalog.resolve(path=fetched["path"])

    def _restore(self, entry):
        with _pg.Session(self.config["connection"], self.config["connection"]["maintenance_db"]) as session:
            handle = session.connect()
            try:
                if _pg.database_exists(handle, self.scratch):
                    raise RestoreError("scratch database %s already exists; is another drill running?" % self.scratch)
            finally:
                handle.close()
        self.scratch_owned = True  # from here on the teardown drops it
        options = _restore.Options(self.scratch, create=True, no_owner=True, jobs=self.drill["jobs"],
                                   identity_file=self.options.identity_file, tmp_dir=self.workdir)
        try:
            return _restore.restore(self.config, entry, options, via=self.via)
        except LifeboatError as exc:
            raise type(exc)("restore into %s failed: %s" % (self.scratch, _cause(exc)))

    def _run_checks(self):
        self.checks = run_checks(self.config["connection"], self.scratch, self.chosen.manifest, self.drill["checks"],
                                 jobs=self.drill["jobs"])
        failed = [c for c in self.checks if c["ok"] is False]
        if failed:
            raise VerifyError("checks failed in %s: %s" % (self.scratch, "; ".join("%s: %s" % (c["name"], c["detail"]) for c in failed)))

    def _teardown(self):
        if self.options.keep:
            self.stages["teardown"] = {"seconds": 0.0, "outcome": "kept"}
            return
        began = time.time()
        problems = []
        if self.scratch_owned:
            with _pg.Session(self.config["connection"], self.config["connection"]["maintenance_db"]) as session:
                _restore.drop_database(session, self.scratch)
                try:
                    handle = session.connect()
                    try:
                        if _pg.database_exists(handle, self.scratch):
                            problems.append("scratch database %s could not be dropped" % self.scratch)
                    finally:
                        handle.close()
                except LifeboatError as exc:
                    problems.append("cannot check that %s was dropped: %s" % (self.scratch, exc))
        if self.workdir:
            remove_tree(self.workdir)
            if os.path.exists(self.workdir):
                problems.append("%s could not be removed" % self.workdir)
        self.warnings += problems
        self.stages["teardown"] = {"seconds": round(time.time() - began, 3), "outcome": "failed: " + "; ".join(problems) if problems else "ok"}

    # -- recording -------------------------------------------------------------------------------------------------------

    def _document(self, error):
        manifest = self.chosen.manifest if self.chosen else None
        consistent = _manifest.epoch_of(manifest["consistent_at"]) if manifest else None
        rpo = round(self.started - consistent, 3) if consistent is not None else None
        lags = [f for f in (manifest or {}).get("freshness") or [] if f.get("newest_epoch") is not None]
        lag = round(self.started - max(f["newest_epoch"] for f in lags), 3) if lags else None
        objectives = {}
        for name, measured in (("rto", self.rto), ("rpo", rpo)):
            target = self.drill["objectives"].get(name)
            if target and measured is not None:
                seconds = parse_duration(target)
                objectives[name] = {"name": name.upper(), "target": target, "target_seconds": seconds,
                                    "measured_seconds": measured, "met": measured <= seconds}
        kept = []
        if self.options.keep:
            kept = ([self.scratch] if self.scratch_owned else []) + ([self.workdir] if self.workdir else [])
        return {
            "profile": self.profile,
            "drill_host": self.config["host"],
            "source": self.drill["source"],
            "source_note": LOCAL_NOTE if self.drill["source"] == "local" else None,
            "source_host": self.drill["source_host"],
            "started_at": _manifest.iso(self.started),
            "finished_at": _manifest.iso(time.time()),
            "engine_version": ENGINE_VERSION,
            "ok": error is None,
            "error": " ".join(str(error).split()) if error is not None else None,
            "error_kind": getattr(error, "kind", "interrupted") if error is not None else None,
            "backup": _backup_of(self.chosen),
            "scratch_database": self.scratch,
            "jobs": self.drill["jobs"],
            "keep": bool(self.options.keep),
            "kept": kept,
            "rto_seconds": self.rto,
            "rpo_seconds": rpo,
            "freshness_lag_seconds": lag,
            "objectives": objectives,
            "stages": self.stages,
            "checks": self.checks,
        }

    def _record(self, error, op):
        """Report files (here and in the bucket), metrics, webhook: none of them may hide the drill's own outcome."""
        document = self._document(error)
        try:
            document["report"] = _report.write(self.drill["report_dir"], document)
        except LifeboatError as exc:
            document["report"] = {}
            self.warnings.append("drill report not written: %s" % exc)
        if document["report"] and self.drill["source"] == "offsite":
            try:
                document["report"]["bucket"] = self._upload(document["report"])
            except LifeboatError as exc:
                self.warnings.append("drill report not copied to the bucket: %s" % exc)
        met = error is None and all(o["met"] for o in document["objectives"].values())
        values = {"lifeboat_drill_last_run_timestamp_seconds": self.started, "lifeboat_drill_objective_met": 1 if met else 0}
        if error is None:
            values.update(lifeboat_drill_rto_seconds=self.rto, lifeboat_drill_rpo_seconds=document["rpo_seconds"])
        if met:
            values["lifeboat_drill_last_success_timestamp_seconds"] = time.time()
        try:
            _metrics.update(self.config["metrics_dir"], self.profile, None, values=values, stem="lifeboat_drill",
                            labels=(("profile", self.profile), ("source_host", self.drill["source_host"])))
        except (LifeboatError, OSError) as exc:
            self.warnings.append("drill metrics not written: %s" % exc)
        self._notify(document, error if error is not None else _missed(document))
        return document

    def _upload(self, paths):
        section = _remote.target(self.config, self.profile)
        remote = _s3.Remote(section)
        base = "/".join([p for p in (section.get("prefix") or "").strip("/").split("/") if p] + ["drills", self.drill["source_host"], self.profile])
        urls = []
        for path in (paths["json"], paths["markdown"], paths["html"]):
            with open(path, "rb") as handle:
                key = "%s/%s" % (base, os.path.basename(path))
                remote.put(key, handle.read(), {})
                urls.append(remote.url(key))
        return urls

    def _notify(self, document, error):
        notifier = _notify.Notifier(self.config, self.profile, deadman=False)
        failed_stage = next((name for name in STAGES if self.stages[name]["outcome"] not in ("ok", "not run", "kept")), None)
        summary = {"duration_seconds": round(time.time() - self.started, 1), "failed_step": "drill " + (failed_stage or "objectives"),
                   "backup": {"id": (document["backup"] or {}).get("id")}}
        outcomes = notifier.failure(summary, error) if error is not None else notifier.success(summary)
        self.warnings += ["drill notification (%s) failed: %s" % (o["target"], o["error"]) for o in outcomes if not o["ok"]]

    def _result(self, document):
        keys = ("ok", "profile", "source", "source_note", "source_host", "drill_host", "scratch_database", "rto_seconds",
                "rpo_seconds", "freshness_lag_seconds", "objectives", "stages", "checks", "report", "kept")
        result = dict((k, document.get(k)) for k in keys)
        result["objectives_met"] = all(o["met"] for o in document["objectives"].values())
        result.update(backup_id=self.chosen.id if self.chosen else None, backup=document["backup"],
                      consistent_at=self.chosen.manifest["consistent_at"] if self.chosen else None)
        return result


def _missed(document):
    """The message of a missed objective, naming it, its target and the measurement; None when all were met."""
    missed = [o for o in document["objectives"].values() if not o["met"]]
    return "; ".join("%s objective missed: target %s (%ds), measured %.1fs" % (
        o["name"], o["target"], o["target_seconds"], o["measured_seconds"]) for o in missed) or None


def _backup_of(chosen):
    if chosen is None:
        return None
    manifest = chosen.manifest
    return {"id": chosen.id, "host": manifest["host"], "database": manifest["database"], "location": chosen.location,
            "consistent_at": manifest["consistent_at"], "bytes": chosen.size, "server_version": manifest["server_version"],
            "pg_dump_version": manifest["pg_dump_version"], "engine_version": manifest.get("engine_version"),
            "tables": len(manifest["tables"]), "rows": sum(t["rows"] for t in manifest["tables"])}


def _outcome(exc):
    if isinstance(exc, LifeboatError):
        return "failed: %s" % " ".join(str(exc).split())
    return "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed: %s" % type(exc).__name__


def _cause(exc):
    """The inner action's own cause, without its "Failed to ..." prefix (the drill names the stage instead)."""
    inner = exc.__cause__ if isinstance(exc.__cause__, LifeboatError) else exc
    return " ".join(str(inner).split())


# -- checks ------------------------------------------------------------------------------------------------------------

# Largest first: with several sessions the longest checks start at once and the short ones fill in behind them.
_BTREE_INDEXES = """
SELECT c.oid, n.nspname, c.relname
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am ON am.oid = c.relam
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
 ORDER BY pg_relation_size(i.indrelid) + pg_relation_size(i.indexrelid) DESC, n.nspname, c.relname
"""


def run_checks(connection, database, manifest, profile_checks, jobs=1):
    """Every check of the restored database: [{name, ok (True/False/None for skipped), detail}]; runs them all.

    Up to ``jobs`` sessions work at once (the restore's jobs): the checks are scans the server runs on one core
    each, and amcheck is split per index, so on N cores they take about 1/N of their time one after another.
    """
    session = _pg.Session(connection, database)
    try:
        indexes, amcheck_error = _btree_indexes(session)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            counts = pool.submit(_check, "row counts and freshness", lambda: _counts(session, manifest))
            sample = pool.submit(_check, "content sample", lambda: _sample(session, manifest))
            damage = [pool.submit(_index_damage, session, index) for index in indexes]
            own = [pool.submit(_check, item["name"], lambda item=item: _profile_check(session, item["sql"]))
                   for item in profile_checks]
            amcheck = _amcheck_result(indexes, amcheck_error, [future.result() for future in damage])
            return [counts.result(), amcheck, sample.result()] + [future.result() for future in own]
    finally:
        session.close()


def _check(name, action):
    try:
        ok, detail = action()
    except LifeboatError as exc:
        ok, detail = False, " ".join(str(exc).split())
    return {"name": name, "ok": ok, "detail": detail}


def _counts(session, manifest):
    tables = _verify.compare_with_manifest(session, manifest)
    fresh = len(manifest.get("freshness") or [])
    return True, "%d tables, %d rows as the manifest records; %d freshness columns match" % (
        len(tables), sum(t["rows"] for t in tables), fresh)


def _btree_indexes(session):
    """(indexes to check, None) or ([], why amcheck cannot run)."""
    try:
        handle = session.connect()
    except LifeboatError as exc:
        return [], " ".join(str(exc).split())
    try:
        try:
            _pg.query(handle, "CREATE EXTENSION IF NOT EXISTS amcheck")
        except DatabaseError as exc:
            return [], ("cannot create extension amcheck in the scratch database (install postgresql-contrib; the "
                        "drill's role needs to be allowed to create it): %s" % " ".join(str(exc).split()))
        try:
            return _pg.query(handle, _BTREE_INDEXES), None
        except DatabaseError as exc:
            return [], "cannot list the B-tree indexes: %s" % " ".join(str(exc).split())
    finally:
        handle.close()


def _index_damage(session, index):
    """None, or what bt_index_check (heapallindexed) found wrong with one index."""
    oid, schema, name = index
    try:
        handle = session.connect()
    except LifeboatError as exc:
        return "index %s.%s: %s" % (schema, name, " ".join(str(exc).split()))
    try:
        _pg.query(handle, "SELECT bt_index_check(%s::regclass, heapallindexed => true)", (oid,))
    except DatabaseError as exc:
        return "index %s.%s: %s" % (schema, name, str(exc).replace("query failed: ", ""))
    finally:
        handle.close()
    return None


def _amcheck_result(indexes, error, damage):
    if error:
        return {"name": "amcheck", "ok": False, "detail": error}
    damaged = [found for found in damage if found]
    if damaged:
        return {"name": "amcheck", "ok": False, "detail": "; ".join(damaged)}
    return {"name": "amcheck", "ok": True, "detail": "%d B-tree indexes checked (bt_index_check, heapallindexed)" % len(indexes)}


def _sample(session, manifest):
    sampled = [t for t in manifest["tables"] if t.get("sample")]
    if not sampled:
        return None, "skipped: the backup records no content sample (taken before samples existed, or no table has a primary key)"
    handle = session.connect(autocommit=False)
    differ, rows = [], 0
    try:
        _pg.query(handle, "SET TRANSACTION READ ONLY")
        _pg.query(handle, "SET LOCAL TimeZone TO 'UTC'")
        for expected in sampled:
            table = _tables.Table(None, expected["schema"], expected["name"], "r")
            found = _tables.content_sample(handle, table, expected["sample"]["key"])
            rows += found["rows"]
            if expected["sample"].get("method") != _tables.SAMPLE_METHOD:
                differ.append("table %s: the sample was taken as %r, this lifeboat samples as %r" % (
                    _manifest.table_key(expected), expected["sample"].get("method"), _tables.SAMPLE_METHOD))
            elif (found["rows"], found["digest"]) != (expected["sample"]["rows"], expected["sample"]["digest"]):
                differ.append("table %s: %d sampled rows with digest %s, the manifest records %d with digest %s" % (
                    _manifest.table_key(expected), found["rows"], found["digest"], expected["sample"]["rows"], expected["sample"]["digest"]))
    finally:
        handle.rollback()
        handle.close()
    unsampled = len(manifest["tables"]) - len(sampled)
    if differ:
        return False, "; ".join(differ)
    return True, "%d rows in %d tables (one in %d by primary-key hash) match the dump%s" % (
        rows, len(sampled), _tables.SAMPLE_BUCKETS, "; %d tables without a primary key not sampled" % unsampled if unsampled else "")


def _profile_check(session, sql):
    """The profile's own check: one row, one boolean column, true passes; run read-only."""
    handle = session.connect(autocommit=False)
    try:
        _pg.query(handle, "SET TRANSACTION READ ONLY")
        _pg.query(handle, "SET LOCAL statement_timeout TO '600s'")
        rows = _pg.query(handle, sql)
    finally:
        handle.rollback()
        handle.close()
    if len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], (bool, type(None))):
        return False, "must return one row with one boolean column, returned %s" % _shape(rows)
    if rows[0][0] is not True:
        return False, "returned %s" % ("false" if rows[0][0] is False else "null")
    return True, "returned true"


def _shape(rows):
    if len(rows) != 1:
        return "%d rows" % len(rows)
    return "%d columns" % len(rows[0]) if len(rows[0]) != 1 else "a %s" % type(rows[0][0]).__name__
