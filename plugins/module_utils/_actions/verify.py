# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification tiers: checksum, archive, restore.

``checksum`` reads every artifact once against the manifest; ``archive``
also decrypts and decompresses it and has pg_restore read the whole archive;
``restore`` restores into a scratch database and demands the exact row
counts and newest freshness values recorded at dump time. ``pg_restore
--list`` alone is never called verification.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import secrets
import time

from .._errors import ConfigError, LifeboatError, StorageError, VerifyError
from .._postgres import session as _pg
from .._postgres import tables as _tables
from .._store import catalog as _catalog
from .._store import manifest as _manifest
from .._stream import artifacts as _artifacts
from .._stream import codec as _codec
from .._stream import pipeline as _pipeline
from . import restore as _restore
from .operation import Operation

LEVELS = ("checksum", "archive", "restore")


def verify(config, entry, level, identity_file=None, scratch=None, via="module"):
    """Verify one backup; raises VerifyError naming the artifact and the check that failed."""
    _check_usage(entry, level, identity_file)
    manifest = entry.manifest
    details = {}
    operation = Operation(config, "verify", "verify backup %s" % entry.id, via, kind=VerifyError,
                          message="Verification (%s) of backup %s failed" % (level, entry.id),
                          profile=manifest["profile"], database=manifest["database"], backup_id=entry.id, level=level)
    with operation as op:
        op.on_failure(increment=["lifeboat_verify_failures_total"])
        # verification.json records what ran, passed or not, before the audit line and the metrics.
        try:
            if level == "checksum":
                for item in manifest["artifacts"]:
                    _artifacts.checksum(entry, item)
            else:
                details = _read_back(config, entry, level, identity_file, scratch or config["connection"])
        except LifeboatError as exc:
            op.warnings += _record_verification(entry, level, op, exc)
            raise
        op.warnings += _record_verification(entry, level, op, None)
        op.on_success(values={"lifeboat_verify_last_success_timestamp_seconds": time.time()})
    result = {
        "changed": False,
        "id": entry.id,
        "path": entry.path,
        "profile": manifest["profile"],
        "level": level,
        "verified": True,
        "bytes": sum(a["bytes"] for a in manifest["artifacts"]),
        "duration_seconds": op.duration,
        "warnings": op.warnings,
    }
    result.update(details)
    return result


def _check_usage(entry, level, identity_file):
    """What the caller got wrong, found before anything is recorded: only a verification that ran has a result."""
    if level not in LEVELS:
        raise VerifyError("level must be one of %s, got %r" % (", ".join(LEVELS), level))
    if level != "checksum":
        for item in entry.manifest["artifacts"]:
            if item.get("encryption") == "age":
                try:
                    _codec.check_identity(identity_file, item["name"])
                except ConfigError as exc:  # still a verify error to the caller (exit code 6), only not a result
                    raise VerifyError("Cannot verify backup %s at level %s: %s" % (entry.id, level, exc)) from exc


def _read_back(config, entry, level, identity_file, connection):
    manifest = entry.manifest
    pg_restore = _pg.find_binary("pg_restore", connection, manifest["pg_dump_version"])[0]
    details = {}
    for item in manifest["artifacts"]:
        if item["kind"] == "database" and level == "restore":
            details["tables"] = _restore_check(config, entry, identity_file, connection)
        elif item["kind"] == "database":
            _artifacts.read_through(entry, item, identity_file, [_pipeline.Step("pg_restore", [pg_restore, "--file=/dev/null"], stdio="i")])
        else:
            _artifacts.read_through(entry, item, identity_file, [])
    return details


def _scratch_name(profile):
    return "lifeboat_verify_%s_%s" % (profile.replace("-", "_")[:30], secrets.token_hex(4))


def _restore_check(config, entry, identity_file, connection):
    """Restore into a scratch database through the restore's own plan, compare with the manifest, always drop it."""
    manifest = entry.manifest
    scratch = _scratch_name(manifest["profile"])
    options = _restore.Options(scratch, create=True, no_owner=True, identity_file=identity_file, database_properties=False)
    the_plan = _restore.plan(config, entry, options, connection=connection)
    session = _pg.Session(connection, scratch)
    try:
        _restore.create_database(session, scratch, manifest)
        try:
            _restore.restore_archive(the_plan, session)
            return compare_with_manifest(session, manifest)
        finally:
            _restore.drop_database(session, scratch)
    finally:
        session.close()


def compare_with_manifest(session, manifest):
    """Exact row counts per table and newest freshness values; VerifyError on the first difference."""
    handle = session.connect()
    try:
        _pg.query(handle, "SET TimeZone TO 'UTC'")
        tables = [_tables.Table(None, t["schema"], t["name"], "r") for t in manifest["tables"]]
        counts = _tables.count_rows(handle, tables)
        for expected, actual in zip(manifest["tables"], counts):
            if expected["rows"] != actual["rows"]:
                raise VerifyError(
                    "table %s has %d rows after restore, the manifest records %d"
                    % (_manifest.table_key(expected), actual["rows"], expected["rows"])
                )
        targets = [(_tables.Table(None, f["schema"], f["name"], "r"), f["column"]) for f in manifest.get("freshness", [])]
        for expected, actual in zip(manifest.get("freshness", []), _tables.newest_values(handle, targets)):
            if expected["newest"] != actual["newest"]:
                raise VerifyError(
                    "newest %s in table %s is %s after restore, the manifest records %s"
                    % (expected["column"], _manifest.table_key(expected), actual["newest"], expected["newest"])
                )
    finally:
        handle.close()
    return [{"table": _manifest.table_key(t), "rows": t["rows"], "match": True} for t in manifest["tables"]]


def _record_verification(entry, level, op, error):
    """verification.json: what this verification found; a read-only copy only warns."""
    previous = entry.verification or {}
    passed = dict(previous.get("passed") or {})
    if not error:
        passed[level] = _manifest.iso(op.started)
    document = {"level": level, "ok": error is None, "at": _manifest.iso(op.started), "duration_seconds": op.elapsed(),
                "error": str(error) if error else None, "passed": passed}
    try:
        _catalog.record_verification(entry.path, document)
    except StorageError as exc:
        return ["verification result not recorded in the backup directory: %s" % exc]
    return []
