# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking a backup: snapshot, pipelines, manifest, audit and metrics.

Order of events, each one able to fail the run without leaving a backup:
connect and check versions; open a REPEATABLE READ transaction and export its
snapshot; stream ``pg_dump --snapshot`` through zstd and age into
``<id>.partial/`` while counting rows in that same snapshot; dump globals;
write the manifest last and fsync it, inside the partial directory; the rename
of ``<id>.partial`` to ``<id>`` is the commit (see _store.files.staged).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import threading
import time

from .._config.schema import get_profile, require_encryption
from .._errors import ConfigError, DumpError, LifeboatError, LockError, StorageError
from .._postgres import session as _pg
from .._postgres import tables as _tables
from .._store import catalog as _catalog
from .._store import gate as _gate
from .._store import manifest as _manifest
from .._store.files import ProfileDir, ProfileLock, staged
from .._stream import codec as _codec
from .._stream import pipeline as _pipeline
from .._version import ENGINE_VERSION
from . import verify as _verify
from .operation import Operation

# Smallest artifact that can hold a custom-format archive with at least one
# table, after zstd (and age's header): a smaller one was cut short.
ARCHIVE_FLOOR = {"none": 120, "age": 320}


def new_backup_id(profile_dir, now):
    """Sortable UTC id (``profile_dir``: a ProfileDir); a suffix keeps two backups in the same second apart."""
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    candidate, n = base, 1
    while profile_dir.exists(candidate) or profile_dir.exists(candidate + _catalog.PARTIAL):
        candidate = "%s-%d" % (base, n)
        n += 1
    return candidate


def _artifact_name(db, kind, encryption_mode):
    stem = "globals.sql" if kind == "globals" else "%s.dump" % _safe(db)
    return stem + _codec.suffix(encryption_mode)


def _safe(name):
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "database"


# Settings of both transactions in the dump's snapshot. The row counts run beside pg_dump, which keeps the cores
# busy: parallel workers would only add their start-up (0.05-0.15 s of server CPU on the 1 GB bench database), never
# finish before the dump does.
_SNAPSHOT_SETTINGS = ("TimeZone TO 'UTC'", "idle_in_transaction_session_timeout TO 0", "statement_timeout TO 0",
                      "max_parallel_workers_per_gather TO 0")


class _SnapshotEvidence(threading.Thread):
    """Counts rows and reads freshness while pg_dump streams, in a transaction of its own in the dump's snapshot.

    It commits as soon as it is done. Had it counted in the exporting transaction, which stays open until pg_dump
    ends, the share lock of each count would be held as long: an ALTER TABLE arriving then queues behind it, pg_dump's
    own lock on that table queues behind the ALTER, and nothing on the server sees that the snapshot waits for pg_dump.
    """

    def __init__(self, session, snap, lock_wait_timeout):
        super(_SnapshotEvidence, self).__init__(name="lifeboat-counts")
        self.selection, self.targets, self.timeout = snap.selection, snap.targets, lock_wait_timeout
        self.sample = snap.sample  # the drill's content sample, in the same pass as the counts
        self.tables = self.freshness = self.error = None
        self.handle = session.connect(autocommit=False)
        try:
            self.handle.set_session(isolation_level="REPEATABLE READ", readonly=True)
            _pg.query(self.handle, "SET TRANSACTION SNAPSHOT %s", (snap.id,))
            for setting in _SNAPSHOT_SETTINGS + ("lock_timeout TO '%ds'" % lock_wait_timeout,):
                _pg.query(self.handle, "SET LOCAL " + setting)
        except BaseException:
            self.handle.close()
            raise

    def run(self):
        try:
            leaves = self.selection.leaves
            parts = _tables.table_parts(self.handle, leaves)
            self.tables = _tables.count_rows(self.handle, leaves, sample=self.sample)
            for table, entry in zip(leaves, self.tables):
                entry.update(parts[table.oid])
            self.freshness = _tables.newest_values(self.handle, self.targets)
            self.handle.commit()
        except LifeboatError as exc:
            self.error = _lock_error(exc, self.timeout)
        finally:
            self.handle.close()

    def stop(self):
        """Cancel the running count (the dump failed; the server may be gone) and wait for the thread."""
        _pg.cancel(self.handle)
        self.join()

    def finish(self, deadline):
        """Wait for the counts, or stop them when the deadline passes first."""
        while self.is_alive():
            self.join(0.05)
            if deadline.expired.is_set() and self.is_alive():
                self.stop()
                raise deadline.error()


class _Deadline:
    """backup_timeout: when it runs out, ``expired`` is set, which stops the backup's pipelines."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.expired = threading.Event()
        self.timer = threading.Timer(seconds, self.expired.set) if seconds else None
        if self.timer:
            self.timer.daemon = True
            self.timer.start()

    @property
    def stop(self):
        """What a pipeline watches: none at all without a limit, which spares it a thread."""
        return self.expired if self.timer else None

    def error(self):
        return DumpError("did not finish within backup_timeout (%d s); pg_dump and its pipeline were stopped" % self.seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.timer:
            self.timer.cancel()


def plan(config, profile_name):
    """What a backup of ``profile_name`` would do, without writing anything (check mode)."""
    return _run(config, profile_name, check_mode=True, via="check")


def backup(config, profile_name, via="module", verify="none"):
    """Take a backup; ``verify="archive"`` reads it back before returning (with a one-time identity, see _codec)."""
    if verify != "archive":
        return _run(config, profile_name, check_mode=False, via=via)
    with _codec.OneTimeIdentity(config["encryption"]) as (encryption, identity):
        result = _run(dict(config, encryption=encryption), profile_name, check_mode=False, via=via)
        entry = _catalog.resolve(path=result["path"])
        result["verification"] = _verify.verify(config, entry, "archive", identity_file=identity, via=via)
    return result


def _run(config, profile_name, check_mode, via):
    profile = get_profile(config, profile_name)
    encryption = require_encryption(config)
    db = profile["db"]
    started = time.time()
    # A configuration or lock error says all there is to say; anything else names the database and profile.
    with Operation(config, "backup", "dump database %s (profile %s)" % (db, profile_name), via, check_mode,
                   keep=(ConfigError, LockError), profile=profile_name, database=db) as op:
        op.on_failure(values={"lifeboat_backup_last_attempt_timestamp_seconds": started, "lifeboat_backup_last_run_success": 0},
                      increment=["lifeboat_backup_failures_total"])
        with _pg.Session(config["connection"], db) as session:
            result = _dump_with_session(config, profile_name, profile, encryption, session, started, check_mode)
        op.audit(backup_id=result.get("id"), bytes=result.get("bytes"))
        op.on_success(values={
            "lifeboat_backup_last_success_timestamp_seconds": result.get("finished"),
            "lifeboat_backup_last_attempt_timestamp_seconds": started,
            "lifeboat_backup_last_run_success": 1,
            "lifeboat_backup_duration_seconds": result.get("duration_seconds"),
            "lifeboat_backup_size_bytes": result.get("bytes"),
        })
    result.pop("finished", None)
    result["root"] = config["backup_root"]
    result["warnings"] += op.warnings
    return result


def _dump_with_session(config, profile_name, profile, encryption, session, started, check_mode):
    if check_mode:
        with _Snapshot(config, profile, session) as snap:
            return _plan_result(config, profile_name, profile, encryption, snap)
    root = config["backup_root"]
    # A credential switch in progress (in_place rotation) finishes first; then a second run stops at once.
    with ProfileDir(root, _catalog.profile_dir(root, profile_name)) as profile_dir, \
            _gate.passing(profile_dir.path, _gate.BACKUP_WAIT), ProfileLock(profile_dir, profile_name):
        with _Snapshot(config, profile, session) as snap:
            return _write_backup(config, profile_name, profile, encryption, session, snap, started, profile_dir)


class _Snapshot:
    """A read-only REPEATABLE READ transaction whose snapshot pg_dump imports."""

    def __init__(self, config, profile, session):
        self.handle = session.connect()
        try:
            self.info = _pg.server_info(self.handle)
            self.server_major = _pg.major_of(self.info["server_version_num"])
            self.pg_dump, self.dump_major = _pg.find_binary("pg_dump", config["connection"], self.server_major)
            _pg.require_client_not_older("pg_dump", self.pg_dump, self.dump_major, self.server_major)
            self.handle.autocommit = False
            self.handle.set_session(isolation_level="REPEATABLE READ", readonly=True)
            for setting in _SNAPSHOT_SETTINGS:
                _pg.query(self.handle, "SET LOCAL " + setting)
            self.id, self.consistent_at = _pg.query(
                self.handle, "SELECT pg_export_snapshot(), extract(epoch FROM transaction_timestamp())::float8"
            )[0]
            self.encoding, self.collate, self.ctype = _pg.query(
                self.handle,
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()",
            )[0]
            self.selection = _tables.select(self.handle, profile)
            self.targets = _tables.freshness_targets(self.handle, profile, self.selection)
            self.sample = profile.get("content_sample", True)
        except BaseException:
            self.handle.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _plan_result(config, profile_name, profile, encryption, snap):
    selection = snap.selection
    return {
        "changed": True,
        "profile": profile_name,
        "database": profile["db"],
        "path": _catalog.profile_dir(config["backup_root"], profile_name),
        "server_version": snap.info["server_version"],
        "pg_dump": snap.pg_dump,
        "encryption": encryption["mode"],
        "tables": [t.key for t in selection.leaves],
        "definitions_only": [t.key for t in selection.all_tables if t not in selection.data_tables],
        "globals": profile["globals"],
        "warnings": selection.warnings,
    }


def _write_backup(config, profile_name, profile, encryption, session, snap, started, profile_dir):
    db = profile["db"]
    handle, selection, info = snap.handle, snap.selection, snap.info
    backup_id = new_backup_id(profile_dir, started)
    final = os.path.join(profile_dir.path, backup_id)
    encode = _codec.encode_steps(encryption, profile["compression_level"], profile["compression_threads"])
    env = session.env()
    artifacts = []
    with _Deadline(profile["backup_timeout"]) as deadline, staged(profile_dir, backup_id, StorageError) as partial:
        timeout = profile["lock_wait_timeout"]
        dump_argv = [snap.pg_dump, "--format=custom", "--compress=0", "--no-password", "--snapshot=%s" % snap.id]
        if timeout:
            dump_argv.append("--lock-wait-timeout=%ds" % timeout)
        dump_argv += selection.pg_dump_args() + ["--dbname=" + _pg.dbname_arg(db)]
        evidence = _SnapshotEvidence(session, snap, timeout)
        evidence.start()
        try:
            artifacts.append(_stream(partial.path, "database", _artifact_name(db, "database", encryption["mode"]),
                                     [_pipeline.Step("pg_dump", dump_argv, env, stdio="o")] + encode, encryption, deadline))
        except BaseException as exc:
            evidence.stop()
            raise _lock_error(exc, timeout)
        evidence.finish(deadline)
        if evidence.error:
            raise evidence.error
        handle.commit()  # release the snapshot only after pg_dump is done with it
        _check_floor(artifacts[0], selection, encryption)
        if profile["globals"]:
            pg_dumpall = _pg.find_binary("pg_dumpall", config["connection"], snap.server_major)[0]
            globals_argv = [pg_dumpall, "--globals-only", "--no-password", "--database=" + _pg.dbname_arg(db)]
            if not info["superuser"]:
                globals_argv.append("--no-role-passwords")  # pg_authid is superuser-only
            artifacts.append(_stream(partial.path, "globals", _artifact_name(db, "globals", encryption["mode"]),
                                     [_pipeline.Step("pg_dumpall", globals_argv, env)] + encode, encryption, deadline))
        finished = time.time()
        document = {
            "backup_id": backup_id,
            "profile": profile_name,
            "host": config["host"],
            "database": db,
            "server_version": info["server_version"],
            "server_version_num": info["server_version_num"],
            "pg_dump_version": snap.dump_major,
            "encoding": snap.encoding,
            "collate": snap.collate,
            "ctype": snap.ctype,
            "engine_version": ENGINE_VERSION,
            "started_at": _manifest.iso(started),
            "finished_at": _manifest.iso(finished),
            "consistent_at": _manifest.iso(snap.consistent_at),
            "duration_seconds": round(finished - started, 3),
            "selection": {"tables": profile["tables"], "exclude_tables": profile["exclude_tables"]},
            "artifacts": artifacts,
            "tables": evidence.tables,
            "freshness": evidence.freshness,
        }
        _manifest.write(partial.path, document, dir_fd=partial.fd)  # last, inside .partial: the rename commits it
    size = sum(a["bytes"] for a in artifacts)
    return {
        "changed": True,
        "id": backup_id,
        "path": final,
        "profile": profile_name,
        "database": db,
        "host": config["host"],
        "bytes": size,
        "artifacts": artifacts,
        "tables": evidence.tables,
        "freshness": evidence.freshness,
        "consistent_at": document["consistent_at"],
        "duration_seconds": document["duration_seconds"],
        "finished": finished,
        "warnings": selection.warnings,
    }


# pg_dump's lock wait ends as a statement (older: lock) timeout on its LOCK TABLE; the counts' as a lock timeout.
_PG_DUMP_LOCKED = re.compile(r"due to (?:statement|lock) timeout\b.*\bLOCK TABLE (.+?) IN ACCESS SHARE MODE", re.S)
_COUNT_LOCKED = re.compile(r"^(?:(.+?): )?query failed: canceling statement due to lock timeout")


def _lock_error(exc, timeout):
    """Say what a lock wait that ran out means, naming the table; any other error stays as it is."""
    found = _PG_DUMP_LOCKED.search(str(exc)) or _COUNT_LOCKED.search(str(exc))
    if not found:
        return exc
    return DumpError("%s is locked by another session and was not released within lock_wait_timeout (%d s)"
                     % (found.group(1) or "a table", timeout))


def _stream(partial, kind, name, steps, encryption, deadline):
    path = os.path.join(partial, name)
    try:
        result = _pipeline.to_file(steps, path, stop=deadline.stop)["sink"]
    except _pipeline.Stopped:
        raise deadline.error()
    except _pipeline.PipelineError as exc:
        if exc.storage:
            raise StorageError("%s: %s" % (name, exc.detail))
        raise DumpError(str(exc))
    item = {
        "name": name,
        "kind": kind,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "compression": "zstd",
        "encryption": encryption["mode"],
    }
    if encryption["mode"] == "age":
        item["recipients"] = [r.strip() for r in encryption["recipients"]]
        if encryption.get("one_time_recipient"):
            item["one_time_recipient"] = encryption["one_time_recipient"]
    return item


def _check_floor(artifact, selection, encryption):
    if selection.leaves and artifact["bytes"] < ARCHIVE_FLOOR[encryption["mode"]]:
        raise DumpError(
            "pg_dump produced only %d bytes for %d tables: the archive is empty or cut short"
            % (artifact["bytes"], len(selection.leaves))
        )
