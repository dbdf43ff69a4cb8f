# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database-level properties a restore into a new database must carry: settings, grants, comment.

pg_dump (11 and later) keeps ``ALTER DATABASE ... SET``, ``ALTER ROLE ... IN
DATABASE ... SET``, the database's GRANTs, COMMENT and SECURITY LABEL in the
archive (entries ``DATABASE PROPERTIES``, ``ACL - DATABASE``, ``COMMENT -
DATABASE``), and pg_restore applies them only with ``--create``, which would
also create the database under its old name. So the SQL pg_restore --create
prints for those entries alone is read, the old name in each statement is
replaced by the target's, and the statements run in the new database after
its data is in (a setting such as default_transaction_read_only must not
stop the restore itself).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .._errors import RestoreError
from .session import quote_ident

_IDENT = r'(?:"(?:[^"]|"")*"|[^\s"]+)'


def entries(listing, privileges=True):
    """The ``pg_restore --list`` lines of the database's own properties."""
    chosen = []
    for line in listing.splitlines():
        body = line.split(" ", 3)[3] if re.match(r"^\d+; \d+ \d+ ", line) else ""
        if body.startswith("DATABASE PROPERTIES ") or body.startswith(("COMMENT - DATABASE ", "SECURITY LABEL - DATABASE ")):
            chosen.append(line)
        elif privileges and body.startswith("ACL - DATABASE "):
            chosen.append(line)
    return chosen


def names(lines):
    """'3365; 0 0 DATABASE PROPERTIES - fid postgres' -> 'DATABASE PROPERTIES'; 'COMMENT - DATABASE fid ...' -> 'COMMENT'."""
    return [line.split(" ", 3)[3].split(" - ")[0] for line in lines]


def statements(script):
    """SQL statements of a ``pg_restore --create`` script after its first ``\\connect``, without psql meta-commands
    (\\connect, \\restrict) and comments. Before it, pg_restore always prints CREATE DATABASE and its owner: the
    target is already created, by this restore's user."""
    lines = script.splitlines()
    connects = [index for index, line in enumerate(lines) if line.startswith("\\connect ")]
    lines = lines[connects[0]:] if connects else lines
    text = "\n".join(line for line in lines if not line.startswith(("\\", "--")))
    result, start, quote = [], 0, None
    for pos, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None  # a doubled quote closes and reopens: same state after both
        elif char in "'\"":
            quote = char
        elif char == ";":
            statement = text[start:pos + 1].strip()
            if statement:
                result.append(statement)
            start = pos + 1
    return result


def renamed(statement, source, target):
    """``statement`` about database ``source`` made about ``target``; unchanged when it names no database."""
    forms = "|".join(re.escape(form) for form in sorted({source, quote_ident(source)}, key=len, reverse=True))
    shape = re.compile(
        r"^((?:COMMENT ON DATABASE|ALTER DATABASE|SECURITY LABEL FOR %s ON DATABASE|ALTER ROLE %s IN DATABASE"
        r"|(?:GRANT|REVOKE) (?:GRANT OPTION FOR )?[A-Z, ]+ ON DATABASE) )(?:%s)(?=[\s;])" % (_IDENT, _IDENT, forms))
    match = shape.match(statement)
    if match:
        return match.group(1) + quote_ident(target) + statement[match.end():]
    if re.search(r"\bDATABASE\b", statement.split("'")[0]):
        raise RestoreError("cannot apply the database property %r to %s: not a statement this restore knows"
                           % (statement[:80], target))
    return statement
