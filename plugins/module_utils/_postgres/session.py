# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to PostgreSQL: connections, client binaries and their environment.

A password never reaches argv: psycopg2 gets it in-process and the client
programs get a private 0600 passfile through ``PGPASSFILE`` in their own
environment only; that passfile is a memfd where the OS has them
(``_stream.scratch.SecretFile``), so not even a killed engine leaves it behind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import re
import shutil
import subprocess

from .._config.schema import LIBPQ_ENVIRONMENT
from .._errors import ConfigError, DatabaseError
from .._stream.scratch import SecretFile

try:
    import psycopg2
    import psycopg2.extensions

    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - reported by require_psycopg2()
    HAS_PSYCOPG2 = False

APPLICATION_NAME = "lifeboat"


def require_psycopg2():
    if not HAS_PSYCOPG2:
        raise DatabaseError("the psycopg2 Python library is required (python3-psycopg2 or psycopg2-binary)")


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def dbname_arg(name):
    """A database name as a libpq connection string for ``--dbname``.

    Client programs read a ``--dbname`` holding '=' (or a URI prefix) as a
    connection string, so a database named ``a=b`` would fail; quoted, every name works.
    """
    return "dbname='%s'" % name.replace("\\", "\\\\").replace("'", "\\'")


def major_of(version_num):
    """150020 -> 15; 90624 -> 9.6 style numbers map to 9."""
    return version_num // 10000


# The TLS options (community.postgresql's names) as libpq keywords and the variables client programs read them from.
_TLS = (("ssl_mode", "sslmode", "PGSSLMODE"), ("ca_cert", "sslrootcert", "PGSSLROOTCERT"),
        ("ssl_cert", "sslcert", "PGSSLCERT"), ("ssl_key", "sslkey", "PGSSLKEY"))


def libpq_params(connection):
    """libpq keywords beyond host, port, user and password: TLS, connect_params, session_role (as a startup option)."""
    params = dict((keyword, connection.get(option)) for option, keyword, _variable in _TLS)
    params.update(connection.get("connect_params") or {})
    role = connection.get("session_role")
    if role:
        # the server sets the role before the first query, for psycopg2 and every client program alike
        escaped = role.replace("\\", "\\\\").replace(" ", "\\ ")
        params["options"] = ("%s -c role=%s" % (params.get("options") or "", escaped)).strip()
    return dict((k, str(v)) for k, v in params.items() if v not in (None, ""))


def libpq_environment(connection):
    """The same keywords as environment variables for pg_dump, pg_restore and psql (never a password)."""
    names = dict(LIBPQ_ENVIRONMENT, **dict((keyword, variable) for _option, keyword, variable in _TLS))
    return dict((names[k], v) for k, v in libpq_params(connection).items())


def passfile_escape(value):
    """One field of a libpq password file: backslash and colon escaped."""
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


class Session:
    """Connection settings for one database, usable as a context manager.

    ``env()`` is the environment for client programs; ``connect()`` opens a
    psycopg2 connection. A temporary passfile lives as long as the session.
    """

    def __init__(self, connection, db):
        self.connection = connection
        self.db = db
        self._secret = None
        self._passfile = connection.get("passfile")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._secret:
            self._secret.close()
            self._secret = None

    def for_db(self, db):
        """A session on another database of the same server (shares nothing mutable)."""
        return Session(self.connection, db)

    @property
    def host(self):
        return self.connection.get("login_unix_socket") or self.connection.get("login_host")

    def describe(self):
        return "%s on %s:%s" % (self.db, self.host or "local socket", self.connection.get("login_port") or 5432)

    def _password_file(self):
        password = self.connection.get("login_password")
        if not password:
            return self._passfile
        if not self._secret:
            self._secret = SecretFile("lifeboat-pgpass", "*:*:*:*:%s\n" % passfile_escape(password))
        return self._secret.path

    def env(self, db=None):
        """Environment for pg_dump, pg_restore and psql: libpq variables, no password value."""
        env = dict(os.environ)
        conn = self.connection
        settings = {
            "PGHOST": self.host,
            "PGPORT": conn.get("login_port"),
            "PGUSER": conn.get("login_user"),
            "PGDATABASE": db or self.db,
            "PGPASSFILE": self._password_file(),
            "PGCONNECT_TIMEOUT": conn.get("connect_timeout"),
            "PGAPPNAME": APPLICATION_NAME,
        }
        settings.update(libpq_environment(conn))
        for key, value in settings.items():
            if value is None or value == "":
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    def connect(self, db=None, autocommit=True):
        require_psycopg2()
        conn = self.connection
        kwargs = {
            "dbname": db or self.db,
            "host": self.host,
            "port": conn.get("login_port"),
            "user": conn.get("login_user"),
            "password": conn.get("login_password"),
            "passfile": None if conn.get("login_password") else self._passfile,
            "connect_timeout": conn.get("connect_timeout"),
            "application_name": APPLICATION_NAME,
        }
        kwargs.update(libpq_params(conn))
        try:
            handle = psycopg2.connect(**{k: v for k, v in kwargs.items() if v not in (None, "")})
        except psycopg2.Error as exc:
            raise DatabaseError("cannot connect to database %s: %s" % (Session(conn, db or self.db).describe(), clean_error(exc)))
        handle.autocommit = autocommit
        return handle


_LIBPQ_NOISE = re.compile(
    r'connection to server (at "[^"]*"(, port \d+)?|on socket "[^"]*") failed:\s*|\b(FATAL|ERROR|DETAIL|HINT):\s*'
)


def clean_error(exc):
    """One line from a psycopg2 or client-program error, without libpq's noise."""
    text = str(getattr(exc, "pgerror", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [_LIBPQ_NOISE.sub("", line) for line in lines]
    return "; ".join(dict.fromkeys(lines)) or exc.__class__.__name__


def cancel(handle):
    """Ask the server to stop the running query; when the server is gone there is nothing to stop."""
    with contextlib.suppress(psycopg2.Error):
        handle.cancel()


def query(handle, sql, params=None):
    try:
        with handle.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    except psycopg2.Error as exc:
        raise DatabaseError("query failed: %s" % clean_error(exc))


def server_info(handle):
    """Server version number and whether we are superuser."""
    version = handle.server_version
    superuser = query(handle, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    return {
        "server_version_num": version,
        "server_version": query(handle, "SHOW server_version")[0][0],
        "superuser": bool(superuser and superuser[0][0]),
    }


def database_exists(handle, name):
    return bool(query(handle, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


_BINARY_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def find_binary(name, connection, server_major=None):
    """Locate a client program and return (path, major version).

    Order: ``connection.pg_bin_dir``; Debian's /usr/lib/postgresql/<server major>/bin;
    the newest /usr/lib/postgresql/*/bin; then PATH.
    """
    candidates = []
    if connection.get("pg_bin_dir"):
        candidates.append(os.path.join(connection["pg_bin_dir"], name))
    else:
        if server_major:
            candidates.append("/usr/lib/postgresql/%d/bin/%s" % (server_major, name))
        base = "/usr/lib/postgresql"
        if os.path.isdir(base):
            majors = sorted((d for d in os.listdir(base) if d.isdigit()), key=int, reverse=True)
            candidates.extend(os.path.join(base, d, "bin", name) for d in majors)
        found = shutil.which(name)
        if found:
            candidates.append(found)
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, binary_major(path)
    where = connection.get("pg_bin_dir") or "PATH or /usr/lib/postgresql/*/bin"
    raise ConfigError("%s not found in %s; install the PostgreSQL client of the server's major version" % (name, where))


def binary_major(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError("cannot run %s --version: %s" % (path, exc))
    match = _BINARY_VERSION.search(out)
    if not match:
        raise ConfigError("cannot read the version of %s from %r" % (path, out.strip()))
    return int(match.group(1))


def require_client_not_older(name, path, client_major, server_major):
    if client_major < server_major:
        raise ConfigError(
            "%s %s is version %d but the server is version %d; a dump needs a client at least as new as the server "
            "(install postgresql-client-%d or set connection.pg_bin_dir)" % (name, path, client_major, server_major, server_major)
        )
