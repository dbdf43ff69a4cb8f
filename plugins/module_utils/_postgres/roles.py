# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Login roles for credential rotation: facts, setting a verifier quietly, disabling, terminating sessions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._errors import DatabaseError
from .session import clean_error, query, quote_ident

try:
    import psycopg2
except ImportError:  # pragma: no cover - session.require_psycopg2() reports it when connecting
    psycopg2 = None

# Settings that keep the ALTER ROLE out of the server log and pg_stat_statements. They are superuser settings (or
# GRANT SET ON PARAMETER); a role without that right still sends only the verifier, never the plaintext.
QUIET = (
    ("log_statement", "none"),
    ("log_min_duration_statement", "-1"),
    ("log_min_error_statement", "panic"),
    ("pg_stat_statements.track_utility", "off"),
)


def facts(handle, name):
    """{"exists", "login", "superuser", "verifier" (None unless readable)} of role ``name``."""
    rows = query(handle, "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (name,))
    if not rows:
        return {"exists": False, "login": False, "superuser": False, "verifier": None}
    return {"exists": True, "login": rows[0][0], "superuser": rows[0][1], "verifier": stored_verifier(handle, name)}


def stored_verifier(handle, name):
    """pg_authid.rolpassword, readable by superusers only; None otherwise."""
    try:
        with handle.cursor() as cur:
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,))
            row = cur.fetchone()
        return row[0] if row else None
    except psycopg2.Error:
        return None


def is_member(handle, member, group):
    return bool(query(handle, "SELECT pg_has_role(%s, %s, 'MEMBER')", (member, group))[0][0])


def run(handle, sql, params=None):
    query(handle, sql, params)


def quiet(handle):
    """Apply QUIET where allowed; returns the settings the admin may not change."""
    refused = []
    for name, value in QUIET:
        try:
            with handle.cursor() as cur:
                cur.execute("SET %s = %s" % (name, value))
        except psycopg2.Error:
            refused.append(name)
    return refused


def set_verifier(handle, login, verifier, login_too=None):
    """ALTER ROLE login PASSWORD '<verifier>' [LOGIN|NOLOGIN] in an already quieted session."""
    suffix = "" if login_too is None else (" LOGIN" if login_too else " NOLOGIN")
    try:
        with handle.cursor() as cur:
            cur.execute("ALTER ROLE %s%s PASSWORD %%s" % (quote_ident(login), suffix), (verifier,))
    except psycopg2.Error as exc:
        raise DatabaseError("cannot set the password of role %s: %s" % (login, clean_error(exc)))


def disable(handle, login):
    """No new logins, and no password left that could log in once LOGIN is given back."""
    run(handle, "ALTER ROLE %s NOLOGIN PASSWORD NULL" % quote_ident(login))


def terminate(handle, logins):
    """End every session of ``logins`` except our own; returns how many were ended."""
    rows = query(handle, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE usename = ANY(%s) AND pid <> pg_backend_pid()", (list(logins),))
    return rows[0][0]


def sessions(handle, login):
    return query(handle, "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (login,))[0][0]
