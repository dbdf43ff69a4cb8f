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
import time

from .._errors import ConfigError, LifeboatError, RestoreError
from .._postgres import database_level as _database_level
from .._postgres import overlap as _overlap
from .._postgres import restore_list as _toc
from .._postgres import session as _pg
from .._store import manifest as _manifest
from .._stream import artifacts as _artifacts
from .._stream import codec as _codec
from .._stream import pipeline as _pipeline
from .._stream import scratch as _scratch
from .operation import Operation

_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


class Options:
    """What the operator asked for, one keyword per CLI flag and module option; validated against the backup by ``plan``."""

    DEFAULTS = {
        "create": True, "clean": False, "tables": (), "jobs": 1, "globals": False, "no_owner": False,
        "identity_file": None, "tmp_dir": None,
        "allow_system_target": False,  # a template or the maintenance database as the target
        "database_properties": True,  # into a new database: its settings, grants and comment
    }

    def __init__(self, target_db, **options):
        unknown = sorted(set(options) - set(self.DEFAULTS))
        if unknown:
            raise TypeError("unknown restore options: %s" % ", ".join(unknown))
        self.target_db = target_db
        for name, default in self.DEFAULTS.items():
            setattr(self, name, options.get(name, default))
        self.tables = list(self.tables or [])


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
    ``"schema"."table"``, or a table name that is unique in the backup; a
    partitioned parent (or any parent the manifest records in
    ``partition_of``) means its partitions, as the profile option ``tables``
    does. Quotes may be part of a name, so they are parsed, never just removed.
    """
    known = dict((_manifest.table_key(t), [t]) for t in manifest["tables"])
    parents = {}  # parents that hold no rows of their own: [schema, name] -> their leaf tables
    for table in manifest["tables"]:
        for schema, name in table.get("partition_of", []):
            if "%s.%s" % (schema, name) not in known:
                parents.setdefault((schema, name), []).append(table)
    for (schema, name), leaves in parents.items():
        known["%s.%s" % (schema, name)] = leaves
    chosen = []
    for requested in names:
        name = requested.strip()
        parts = _split_name(name)
        if name not in known and parts and len(parts) == 2:
            name = "%s.%s" % tuple(parts)
        if name in known:
            chosen += [t for t in known[name] if t not in chosen]
            continue
        if parts and len(parts) == 1:
            name = parts[0]
        matches = [[t] for t in manifest["tables"] if t["name"] == name] + [
            leaves for (_schema, parent), leaves in parents.items() if parent == name]
        if len(matches) != 1:
            reason = "is ambiguous; qualify it with its schema" if matches else "is not in backup %s" % manifest["backup_id"]
            raise ConfigError("tables: %r %s" % (name, reason))
        chosen += [t for t in matches[0] if t not in chosen]
    return chosen


def _user_objects(handle):
    sql = (
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN %s AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'"
        % _SYSTEM_SCHEMAS
    )
    return _pg.query(handle, sql)[0][0]


class Plan:
    """A restore decided once: what ``plan`` checked and chose, executed as it is by ``restore`` and by the
    restore-level verification. ``summary()`` is what the front doors show and return."""

    def __init__(self, entry, options, connection, pg_restore, target_major, exists, objects, tables):
        self.entry = entry
        self.options = options
        self.connection = connection  # the server restored into
        self.pg_restore = pg_restore
        self.target_major = target_major
        self.exists = exists
        self.objects = objects
        self.tables = tables  # the manifest's entries of the tables asked for; empty: the whole backup
        self.partial = bool(tables) or _toc.is_partial(entry.manifest)  # some rows are missing: no foreign keys
        self.restored = tables or entry.manifest["tables"]
        self.streamed = _streamed_table(entry.manifest, options, tables)
        # An existing database keeps its own; a new one gets the source's, as pg_restore --create would.
        self.database_properties = options.create and options.database_properties

    @property
    def method(self):
        if self.options.jobs == 1:
            return "stream, one transaction"
        method = "decrypted temporary file, %d jobs" % self.options.jobs
        if self.streamed:
            method += ", loading %s while it decrypts" % _manifest.table_key(self.streamed)
        return method

    def summary(self):
        manifest, options = self.entry.manifest, self.options
        return {
            "backup_id": self.entry.id,
            "backup_path": self.entry.path,
            "source_database": manifest["database"],
            "consistent_at": manifest["consistent_at"],
            "target": options.target_db,
            "target_state": "absent" if not self.exists else ("empty" if not self.objects else "not empty"),
            "action": "create" if options.create else ("clean and restore" if self.objects else "restore into existing"),
            "server_version": "%s -> %d" % (manifest["server_version"], self.target_major),
            "pg_restore": self.pg_restore,
            "jobs": options.jobs,
            "globals": bool(options.globals),
            "method": self.method,
            "foreign_keys": "skipped (partial data)" if self.partial else "restored",
            "database_properties": (
                "from the archive: settings (ALTER DATABASE/ROLE ... SET), comment%s" % ("" if options.no_owner else ", grants")
                if self.database_properties else "kept as the target has them"),
            "tables": [{"table": _manifest.table_key(t), "rows": t["rows"]} for t in self.restored],
            "rows": sum(t["rows"] for t in self.restored),
            "bytes": sum(a["bytes"] for a in manifest["artifacts"]),
        }


def plan(config, entry, options, connection=None):
    """Check everything that can be checked without writing, and decide the restore: a Plan.

    ``connection``: the server to restore into (default: the configured one).
    """
    manifest = entry.manifest
    connection = connection or config["connection"]
    if options.jobs < 1:
        raise ConfigError("jobs: must be at least 1, got %d" % options.jobs)
    tables = _select_tables(manifest, options.tables)
    db_item = _artifact(entry, "database")[0]
    if db_item["encryption"] == "age":
        _codec.check_identity(options.identity_file, db_item["name"])
    if options.globals and _manifest.artifact(manifest, "globals") is None:
        raise ConfigError("globals: backup %s was taken without globals" % entry.id)
    session = _pg.Session(connection, connection["maintenance_db"])
    try:
        handle = session.connect()
        try:
            target_version = handle.server_version
            exists = _pg.database_exists(handle, options.target_db)
            template = exists and _pg.query(handle, "SELECT datistemplate FROM pg_database WHERE datname = %s",
                                            (options.target_db,))[0][0]
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
    _check_system_target(options, connection, template)
    source_major, target_major = _pg.major_of(manifest["server_version_num"]), _pg.major_of(target_version)
    if source_major > target_major:
        raise RestoreError(
            "backup %s was taken from PostgreSQL %s and cannot be restored into the older PostgreSQL %d server; "
            "restore into PostgreSQL %d or newer" % (entry.id, manifest["server_version"], target_major, source_major)
        )
    pg_restore, restore_major = _pg.find_binary("pg_restore", connection, target_major)
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
    return Plan(entry, options, connection, pg_restore, target_major, exists, objects, tables)


def _check_system_target(options, connection, template):
    """Every database created later copies template1, and tools connect to the maintenance database: a restore into
    either is refused unless asked for by name."""
    if options.allow_system_target:
        return
    if template or options.target_db in ("template0", "template1"):
        what = "a template database: every database created from it afterwards would carry the backup's data"
    elif options.target_db == connection["maintenance_db"]:
        what = "the maintenance database (connection.maintenance_db), which this tool and others connect to"
    else:
        return
    raise ConfigError("target database %s is %s; restore into another database, or set allow_system_target "
                      "(--allow-system-target) if this is really meant" % (options.target_db, what))


def restore(config, entry, options, via="module"):
    """Plan, then execute that plan: globals, the new database, the archive."""
    the_plan = plan(config, entry, options)
    timings = {}
    session = _pg.Session(the_plan.connection, options.target_db)
    operation = Operation(config, "restore", "restore backup %s into %s" % (entry.id, options.target_db), via, kind=RestoreError,
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
            timings.update(restore_archive(the_plan, session))
            applied = apply_database_properties(the_plan, session) if the_plan.database_properties else []
    finally:
        session.close()
    timings["total_seconds"] = op.duration
    return dict(the_plan.summary(), changed=True, timings=timings, warnings=op.warnings, database_properties_applied=applied)


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


def restore_archive(the_plan, session):
    """Execute ``the_plan``: pg_restore the database artifact into its target; returns timings.

    One job streams the archive in a single transaction once its checksum is
    confirmed; several jobs need a seekable file, decrypted (and hashed) first,
    or while the largest table loads (``_overlap``).
    """
    entry, options, tables = the_plan.entry, the_plan.options, the_plan.tables
    item = _artifact(entry, "database")[0]
    argv = [the_plan.pg_restore, "--dbname=" + _pg.dbname_arg(options.target_db), "--exit-on-error", "--no-password"]
    if options.clean and not options.create:
        argv += ["--clean", "--if-exists"]
    if options.no_owner:
        argv += ["--no-owner", "--no-privileges"]
    env = session.env(db=options.target_db)
    timings = {}
    scratch = _scratch.PrivateDir("restore", options.tmp_dir)  # the decrypted archive: swept if the engine is killed
    workdir = scratch.path
    try:
        if the_plan.streamed:
            return _overlap.restore(entry, item, options, argv, env, workdir, the_plan.streamed,
                                    abort=lambda: drop_database(session, options.target_db))
        started = time.time()
        if options.jobs == 1:
            _artifacts.checksum(entry, item)
            archive = None
            timings["checksum_seconds"] = round(time.time() - started, 3)
        else:
            archive = _artifacts.decrypt_archive(entry, item, options.identity_file, workdir)
            timings["decrypt_seconds"] = round(time.time() - started, 3)
        if the_plan.partial:
            listing = _artifacts.listing(entry, item, options.identity_file, the_plan.pg_restore, workdir, env, archive)
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
        scratch.remove()
    return timings


def apply_database_properties(the_plan, session):
    """The source database's settings, grants and comment, renamed to the target (``_database_level``); returns
    the names of the archive entries applied."""
    entry, options = the_plan.entry, the_plan.options
    item = _artifact(entry, "database")[0]
    env = session.env(db=options.target_db)
    scratch = _scratch.PrivateDir("restore", options.tmp_dir)
    workdir = scratch.path
    try:
        listing = _artifacts.listing(entry, item, options.identity_file, the_plan.pg_restore, workdir, env)
        lines = _database_level.entries(listing, privileges=not options.no_owner)
        if not lines:
            return []
        script = _artifacts.listing(entry, item, options.identity_file, the_plan.pg_restore, workdir, env,
                                    use_list=_write_list(workdir, lines))
    finally:
        scratch.remove()
    handle = session.connect(db=options.target_db)
    try:
        for statement in _database_level.statements(script):
            _pg.query(handle, _database_level.renamed(statement, entry.manifest["database"], options.target_db))
    finally:
        handle.close()
    return _database_level.names(lines)


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
        logging = _statement_logging(handle)
    finally:
        handle.close()
    scratch = _scratch.PrivateDir("globals", options.tmp_dir)
    workdir = scratch.path
    try:
        plain = _artifacts.decrypt_to_file(entry, item, options.identity_file, workdir)
        script = os.path.join(workdir, "globals.sql")
        with open(plain, "r", encoding="utf-8") as source:
            text = filter_globals(source.read(), roles, spaces)
        with open(script, "w", encoding="utf-8") as target:
            target.write(_quiet(text, logging, entry, session.connection) + text)
        argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password",
                "--dbname=" + _pg.dbname_arg(session.connection["maintenance_db"]), "--file=%s" % script]
        try:
            _pipeline.run([_pipeline.Step("psql", argv, session.env())])
        except _pipeline.PipelineError as exc:
            raise RestoreError("restoring globals failed: %s" % exc)
    finally:
        scratch.remove()


# Settings that make the server write a statement's text to its log; only a superuser may change them for a session.
_LOGGING = (("log_statement", "none", 80000), ("log_min_duration_statement", "-1", 80000),
            ("log_min_duration_sample", "-1", 130000), ("log_transaction_sample_rate", "0", 120000),
            ("log_min_error_statement", "panic", 80000))
_PASSWORD = re.compile(r"\bPASSWORD '")


def _statement_logging(handle):
    """(superuser, server version, the logging settings that would log a role's password)."""
    info = _pg.server_info(handle)
    version = int(_pg.query(handle, "SHOW server_version_num")[0][0])
    active = []
    for name, off, _since in _LOGGING[:2]:  # the two every supported server has
        value = _pg.query(handle, "SHOW %s" % name)[0][0]
        if value != off:
            active.append("%s = %s" % (name, value))
    return info["superuser"], version, active


def _quiet(text, logging, entry, connection):
    """SET statements that keep role passwords (SCRAM verifiers) out of the server log for the globals session.

    A superuser turns statement logging off for its session. Anyone else cannot: when the server would log the
    statements (log_statement, log_min_duration_statement), the restore is refused before anything is sent."""
    superuser, version, active = logging
    if not _PASSWORD.search(text):
        return ""
    if superuser:
        return "".join("SET %s = %s;\n" % (name, _quote_literal(off)) for name, off, since in _LOGGING if version >= since)
    if active:
        raise RestoreError(
            "the globals of backup %s hold role passwords, and this server logs statements (%s): %s is not a superuser, "
            "so it cannot turn that off for its session and the passwords would be written to the server log; restore "
            "globals as a superuser, or on a server with log_statement = none and log_min_duration_statement = -1"
            % (entry.id, ", ".join(active), connection.get("login_user") or "this user"))
    return ""


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
