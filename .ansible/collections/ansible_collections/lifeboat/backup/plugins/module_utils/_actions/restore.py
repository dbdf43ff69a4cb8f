# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup: plan first, then globals, database and data, stopping at the first error.

A single-job restore streams ``age -d | zstd -d | pg_restore`` in one
transaction after the artifact's checksum is confirmed. A parallel restore or
a table subset needs a seekable archive: the artifact is decrypted once into
a private temporary file (hashed on the way), given the data offsets pg_dump
could not write into a pipe (``_offsets``), used, and removed. A parallel
restore of a whole backup into a new database starts loading its largest
table while that file is still being written (``_overlap``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import tempfile
import time

from .._errors import ConfigError, LifeboatError, RestoreError
from .._postgres import overlap as _overlap
from .._postgres import restore_list as _toc
from .._postgres import session as _pg
from .._store import manifest as _manifest
from .._stream import artifacts as _artifacts
from .._stream import codec as _codec
from .._stream import pipeline as _pipeline
from .operation import Operation

_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


class Options:
    """What the operator asked for; validated against the backup by ``plan``."""

    def __init__(self, target_db, create=True, clean=False, tables=(), jobs=1, globals=False,
                 no_owner=False, identity_file=None, tmp_dir=None):
        self.target_db = target_db
        self.create = create
        self.clean = clean
        self.tables = list(tables or [])
        self.jobs = jobs
        self.globals = globals
        self.no_owner = no_owner
        self.identity_file = identity_file
        self.tmp_dir = tmp_dir


def _artifact(entry, kind):
    item = _manifest.artifact(entry.manifest, kind)
    if item is None:
        raise RestoreError("backup %s has no %s artifact" % (entry.id, kind))
    return item, os.path.join(entry.path, item["name"])


_IDENT = re.compile(r'\s*("(?:[^"]|"")*"|[^".\s]+)\s*')


def _split_name(text):
    """SQL-style ``"My Schema"."a.b"`` -> ['My Schema', 'a.b']; None when ``text`` is not written that way."""
    parts, pos = [], 0
    while True:
        match = _IDENT.match(text, pos)
        if not match:
            return None
        parts.append(_unquote(match.group(1)))
        pos = match.end()
        if pos == len(text):
            return parts
        if text[pos] != ".":
            return None
        pos += 1


def _select_tables(manifest, names):
    """Match requested names to the manifest's tables.

    Accepted: the manifest's own ``schema.table`` key, an SQL-quoted
    ``"schema"."table"``, or a table name that is unique in the backup.
    Quotes may be part of a name, so they are parsed, never just removed.
    """
    known = dict((_manifest.table_key(t), t) for t in manifest["tables"])
    chosen = []
    for requested in names:
        name = requested.strip()
        parts = _split_name(name)
        if name not in known and parts and len(parts) == 2:
            name = "%s.%s" % tuple(parts)
        if name in known:
            chosen.append(known[name])
            continue
        if parts and len(parts) == 1:
            name = parts[0]
        matches = [t for t in manifest["tables"] if t["name"] == name]
        if len(matches) != 1:
            reason = "is ambiguous; qualify it with its schema" if matches else "is not in backup %s" % manifest["backup_id"]
            raise ConfigError("tables: %r %s" % (name, reason))
        chosen.append(matches[0])
    return chosen


def _user_objects(handle):
    sql = (
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN %s AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'"
        % _SYSTEM_SCHEMAS
    )
    return _pg.query(handle, sql)[0][0]


def plan(config, entry, options):
    """Check everything that can be checked without writing, and describe the restore."""
    manifest = entry.manifest
    if options.jobs < 1:
        raise ConfigError("jobs: must be at least 1, got %d" % options.jobs)
    tables = _select_tables(manifest, options.tables)
    db_item = _artifact(entry, "database")[0]
    if db_item["encryption"] == "age":
        _codec.check_identity(options.identity_file, db_item["name"])
    if options.globals and _manifest.artifact(manifest, "globals") is None:
        raise ConfigError("globals: backup %s was taken without globals" % entry.id)
    session = _pg.Session(config["connection"], config["connection"]["maintenance_db"])
    try:
        handle = session.connect()
        try:
            target_version = handle.server_version
            exists = _pg.database_exists(handle, options.target_db)
        finally:
            handle.close()
        objects = 0
        if exists:
            objects_handle = session.connect(db=options.target_db)
            try:
                objects = _user_objects(objects_handle)
            finally:
                objects_handle.close()
    finally:
        session.close()
    source_major, target_major = _pg.major_of(manifest["server_version_num"]), _pg.major_of(target_version)
    if source_major > target_major:
        raise RestoreError(
            "backup %s was taken from PostgreSQL %s and cannot be restored into the older PostgreSQL %d server; "
            "restore into PostgreSQL %d or newer" % (entry.id, manifest["server_version"], target_major, source_major)
        )
    pg_restore, restore_major = _pg.find_binary("pg_restore", config["connection"], target_major)
    if restore_major < manifest["pg_dump_version"]:
        raise RestoreError(
            "%s is version %d but the archive was written by pg_dump %d; use pg_restore %d or newer"
            % (pg_restore, restore_major, manifest["pg_dump_version"], manifest["pg_dump_version"])
        )
    if exists and options.create:
        raise RestoreError(
            "target database %s already exists; restore into a new name, or set create=false "
            "(with clean=true to replace its objects)" % options.target_db
        )
    if not exists and not options.create:
        raise RestoreError("target database %s does not exist; set create=true to create it" % options.target_db)
    if exists and objects and not options.clean:
        raise RestoreError(
            "target database %s is not empty (%d relations); set clean=true to drop and replace the objects in the backup"
            % (options.target_db, objects)
        )
    restored = tables or manifest["tables"]
    method = "stream, one transaction"
    if options.jobs > 1:
        method = "decrypted temporary file, %d jobs" % options.jobs
        streamed = _streamed_table(manifest, options, tables)
        if streamed:
            method += ", loading %s while it decrypts" % _manifest.table_key(streamed)
    return {
        "backup_id": entry.id,
        "backup_path": entry.path,
        "source_database": manifest["database"],
        "consistent_at": manifest["consistent_at"],
        "target": options.target_db,
        "target_state": "absent" if not exists else ("empty" if not objects else "not empty"),
        "action": "create" if options.create else ("clean and restore" if objects else "restore into existing"),
        "server_version": "%s -> %d" % (manifest["server_version"], target_major),
        "pg_restore": pg_restore,
        "jobs": options.jobs,
        "globals": bool(options.globals),
        "method": method,
        "foreign_keys": "skipped (partial data)" if (tables or _toc.is_partial(manifest)) else "restored",
        "tables": [{"table": _manifest.table_key(t), "rows": t["rows"]} for t in restored],
        "rows": sum(t["rows"] for t in restored),
        "bytes": sum(a["bytes"] for a in manifest["artifacts"]),
    }


def restore(config, entry, options, via="module"):
    the_plan = plan(config, entry, options)
    timings = {}
    session = _pg.Session(config["connection"], options.target_db)
    operation = Operation(config, "restore", "backup %s into %s" % (entry.id, options.target_db), via, kind=RestoreError,
                          profile=entry.manifest["profile"], database=entry.manifest["database"], backup_id=entry.id,
                          target=options.target_db)
    try:
        with operation as op:
            if options.globals:
                timings["globals_seconds"] = _timed(lambda: restore_globals(config, entry, options, session))
            if options.create:
                create_database(session, options.target_db, entry.manifest)
                # A failed or interrupted restore into a new database leaves no half-restored database behind.
                op.undo(lambda: drop_database(session, options.target_db))
            timings.update(restore_archive(entry, options, session, the_plan["pg_restore"]))
    finally:
        session.close()
    timings["total_seconds"] = op.duration
    return dict(the_plan, changed=True, timings=timings, warnings=op.warnings)


def _timed(action):
    started = time.time()
    action()
    return round(time.time() - started, 3)


def create_database(session, name, manifest):
    """CREATE DATABASE from template0 with the source's encoding, and its locale where this server has it."""
    handle = session.connect(db=session.connection["maintenance_db"])
    try:
        sql = "CREATE DATABASE %s TEMPLATE template0 ENCODING %s" % (_pg.quote_ident(name), _quote_literal(manifest["encoding"]))
        locale = manifest["collate"]
        if locale == manifest["ctype"] and (
            locale in ("C", "POSIX") or _pg.query(handle, "SELECT 1 FROM pg_collation WHERE collname = %s", (locale,))
        ):
            sql += " LOCALE %s" % _quote_literal(locale)
        _pg.query(handle, sql)
    finally:
        handle.close()


def drop_database(session, name):
    try:
        handle = session.connect(db=session.connection["maintenance_db"])
    except LifeboatError:
        return
    try:
        _pg.query(handle, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % _pg.quote_ident(name))
    except LifeboatError:
        pass
    finally:
        handle.close()


def _quote_literal(text):
    return "'%s'" % text.replace("'", "''")


def restore_archive(entry, options, session, pg_restore):
    """pg_restore the database artifact into ``options.target_db``; returns timings.

    One job streams the archive in a single transaction once its checksum is
    confirmed; several jobs need a seekable file, decrypted (and hashed) first,
    or while the largest table loads (``_overlap``).
    """
    item = _artifact(entry, "database")[0]
    tables = _select_tables(entry.manifest, options.tables)
    argv = [pg_restore, "--dbname=" + _pg.dbname_arg(options.target_db), "--exit-on-error", "--no-password"]
    if options.clean and not options.create:
        argv += ["--clean", "--if-exists"]
    if options.no_owner:
        argv += ["--no-owner", "--no-privileges"]
    env = session.env(db=options.target_db)
    timings = {}
    workdir = tempfile.mkdtemp(prefix="lifeboat-restore-", dir=options.tmp_dir)
    try:
        streamed = _streamed_table(entry.manifest, options, tables)
        if streamed:
            return _overlap.restore(entry, item, options, argv, env, workdir, streamed,
                                    abort=lambda: drop_database(session, options.target_db))
        started = time.time()
        if options.jobs == 1:
            _artifacts.checksum(entry, item)
            archive = None
            timings["checksum_seconds"] = round(time.time() - started, 3)
        else:
            archive = _artifacts.decrypt_archive(entry, item, options.identity_file, workdir)
            timings["decrypt_seconds"] = round(time.time() - started, 3)
        if tables or _toc.is_partial(entry.manifest):
            listing = _artifacts.listing(entry, item, options.identity_file, pg_restore, workdir, env, archive)
            chosen = _toc.choose(listing, entry.manifest, tables, into_existing=not options.create)[0]
            argv.append("--use-list=%s" % _write_list(workdir, chosen))
        started = time.time()
        if archive:
            try:
                _pipeline.run([_pipeline.Step("pg_restore", argv + ["--jobs=%d" % options.jobs, archive], env)])
            except _pipeline.PipelineError as exc:
                raise RestoreError(str(exc))
        else:
            step = _pipeline.Step("pg_restore", argv + ["--single-transaction"], env, stdio="i")
            _artifacts.read_through(entry, item, options.identity_file, [step])
        timings["restore_seconds"] = round(time.time() - started, 3)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return timings


def _streamed_table(manifest, options, tables):
    """The table a parallel restore of a whole backup into a new database loads while decrypting (``_overlap``)."""
    if options.create and not tables and not _toc.is_partial(manifest):
        return _overlap.lead_table(manifest, options.jobs)
    return None


def _write_list(workdir, lines):
    path = os.path.join(workdir, "restore.list")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def restore_globals(config, entry, options, session):
    """Roles and tablespaces first; ones that already exist are kept, not recreated."""
    item = _artifact(entry, "globals")[0]
    psql = _pg.find_binary("psql", config["connection"])[0]
    handle = session.connect(db=session.connection["maintenance_db"])
    try:
        roles = set(r[0] for r in _pg.query(handle, "SELECT rolname FROM pg_roles"))
        spaces = set(r[0] for r in _pg.query(handle, "SELECT spcname FROM pg_tablespace"))
    finally:
        handle.close()
    workdir = tempfile.mkdtemp(prefix="lifeboat-globals-", dir=options.tmp_dir)
    try:
        plain = _artifacts.decrypt_to_file(entry, item, options.identity_file, workdir)
        script = os.path.join(workdir, "globals.sql")
        with open(plain, "r", encoding="utf-8") as source, open(script, "w", encoding="utf-8") as target:
            target.write(filter_globals(source.read(), roles, spaces))
        argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password",
                "--dbname=" + _pg.dbname_arg(session.connection["maintenance_db"]), "--file=%s" % script]
        try:
            _pipeline.run([_pipeline.Step("psql", argv, session.env())])
        except _pipeline.PipelineError as exc:
            raise RestoreError("restoring globals failed: %s" % exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_QUOTED_OR_BARE = r'("(?:[^"]|"")+"|\S+)'
_CREATE_ROLE = re.compile(r"^CREATE ROLE (.+);$")
_ALTER_ROLE = re.compile(r"^ALTER ROLE %s " % _QUOTED_OR_BARE)
_CREATE_TABLESPACE = re.compile(r"^CREATE TABLESPACE %s " % _QUOTED_OR_BARE)


def _unquote(name):
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def filter_globals(text, roles, tablespaces):
    """Drop CREATE/ALTER ROLE and CREATE TABLESPACE lines for objects that exist.

    A role that exists keeps its password and attributes: restoring another
    server's globals must not lock out the role this restore connects as.
    Memberships and grants still apply.
    """
    kept = []
    for line in text.splitlines():
        role = _CREATE_ROLE.match(line) or _ALTER_ROLE.match(line)
        space = _CREATE_TABLESPACE.match(line)
        if role and _unquote(role.group(1)) in roles:
            continue
        if space and _unquote(space.group(1)) in tablespaces:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"
