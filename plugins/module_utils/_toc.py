# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choosing archive entries for partial restores (``pg_restore --use-list``).

Three cases need a list instead of the whole archive:

- the backup holds rows of only some tables: foreign keys may point at
  tables restored empty, so FK constraints are left out;
- a table subset into a new database: every definition, rows of the chosen
  tables only, no foreign keys (a side-by-side copy to inspect);
- a table subset into an existing database: only the chosen tables (with
  their defaults, constraints, indexes, triggers, policies, owned
  sequences, grants and comments), nothing else is touched.

Index and sequence names come from the manifest, recorded at dump time,
because a TOC line does not say which table an index belongs to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ._errors import RestoreError

_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
# Longest first, so "TABLE DATA" is not read as "TABLE".
_OWN_PARTS = ("TABLE DATA", "TABLE ATTACH", "TABLE", "DEFAULT", "CONSTRAINT", "TRIGGER", "POLICY", "ROW SECURITY")
_SEQUENCE_PARTS = ("SEQUENCE OWNED BY", "SEQUENCE SET", "SEQUENCE")
# Entries about another object, named in their tag: 'ACL public TABLE orders postgres'.
_DECORATIONS = ("ACL", "COMMENT", "SECURITY LABEL")


def _desc_and_rest(body):
    for desc in ("FK CONSTRAINT", "INDEX ATTACH", "INDEX") + _OWN_PARTS + _SEQUENCE_PARTS + _DECORATIONS:
        if body.startswith(desc + " "):
            return desc, body[len(desc) + 1:]
    return None, body


def entries(listing):
    """Parse ``pg_restore --list`` output into (line, desc, rest) for real entries."""
    result = []
    for line in listing.splitlines():
        match = _LINE.match(line)
        if match:
            desc, rest = _desc_and_rest(match.group(4))
            result.append((line, desc, rest))
    return result


def is_partial(manifest):
    selection = manifest.get("selection") or {}
    return bool(selection.get("tables") or selection.get("exclude_tables"))


def _names(prefix_schema, names):
    return tuple("%s %s " % (prefix_schema, n) for n in names)


def _owns(rest, table):
    """Does this entry's '<schema> <tag> <owner>' belong to ``table`` (a manifest entry)?"""
    return rest.startswith(_names(table["schema"], [table["name"]])) or rest.startswith(
        _names(table["schema"], table.get("indexes", []) + table.get("sequences", []))
    )


def _forms(name):
    """A name as pg_dump may print it in a tag: bare, or quoted like an SQL identifier."""
    return (name, '"%s"' % name.replace('"', '""'))


def _decorates(rest, table):
    """Is this ACL/COMMENT entry ('<schema> TABLE <name> <owner>', '<schema> COLUMN <name>.<col> ...',
    '<schema> CONSTRAINT <c> ON <name> ...') about ``table`` or one of its indexes and sequences?"""
    prefix = table["schema"] + " "
    if not rest.startswith(prefix):
        return False
    tag = rest[len(prefix):]
    for form in _forms(table["name"]):
        if tag.startswith(("TABLE %s " % form, "COLUMN %s." % form)) or (" ON %s " % form) in tag:
            return True
    parts = table.get("indexes", []) + table.get("sequences", [])
    return any(tag.startswith(("INDEX %s " % form, "SEQUENCE %s " % form)) for part in parts for form in _forms(part))


def choose(listing, manifest, tables=(), into_existing=False):
    """The lines to restore, and a short account of what was left out."""
    chosen, skipped = [], {}
    parsed = entries(listing)
    # A partition's indexes that belong to its parent's indexes: in an existing database the parent's
    # index is there, so ATTACH PARTITION creates them, and creating them again would fail.
    attached = set(entry[2] for entry in parsed if entry[1] == "INDEX ATTACH")
    for line, desc, rest in parsed:
        if desc == "FK CONSTRAINT" and (tables or is_partial(manifest)):
            keep = False
        elif tables and into_existing:
            if desc == "INDEX" and rest in attached:
                keep = False
            elif desc in _DECORATIONS:
                keep = any(_decorates(rest, t) for t in tables)
            else:
                keep = desc is not None and desc != "FK CONSTRAINT" and any(_owns(rest, t) for t in tables)
        elif tables:
            keep = desc != "TABLE DATA" or any(rest.startswith(_names(t["schema"], [t["name"]])) for t in tables)
        else:
            keep = True
        if keep:
            chosen.append(line)
        else:
            skipped[desc or "other"] = skipped.get(desc or "other", 0) + 1
    for table in tables:
        if not any(d == "TABLE DATA" and rest.startswith(_names(table["schema"], [table["name"]])) for line, d, rest in parsed):
            raise RestoreError("table %s.%s was not found in the archive's table of contents" % (table["schema"], table["name"]))
    return chosen, skipped
