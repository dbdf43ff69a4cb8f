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

Which entries belong to a table comes from the manifest, recorded at dump
time, because a TOC line does not say which table an index belongs to: the
catalog ids of the table and of everything that depends on it, matched
against each line's own ids, and index and sequence names for comments and
grants, whose lines carry no ids. Names alone are ambiguous (a table
``orders`` and a table ``orders archive``), so they are only used for those
lines and for backups made before the ids were recorded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .._errors import RestoreError

_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_DEPENDS = re.compile(r"^;\s*depends on:((?: \d+)+)\s*$")  # ``pg_restore --list --verbose``, after its entry
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


class Entry:
    """One ``pg_restore --list`` line: the line itself, its description, '<schema> <tag> <owner>', its catalog ids,
    its dump id and the dump ids it depends on (listed with ``--verbose``)."""

    def __init__(self, line, desc, rest, ids, dump_id=None):
        self.line = line
        self.desc = desc
        self.rest = rest
        self.ids = ids
        self.dump_id = dump_id
        self.deps = set()


def entries(listing):
    """Parse ``pg_restore --list [--verbose]`` output into Entry objects for real entries."""
    result = []
    for line in listing.splitlines():
        match = _LINE.match(line)
        depends = _DEPENDS.match(line)
        if match:
            desc, rest = _desc_and_rest(match.group(4))
            result.append(Entry(line, desc, rest, (int(match.group(2)), int(match.group(3))), int(match.group(1))))
        elif depends and result:
            result[-1].deps.update(int(dep) for dep in depends.group(1).split())
    return result


def _without_dependents(parsed, keep, left_out):
    """Leave out what depends on an entry left out of the restored database (a foreign key's COMMENT on the key):
    pg_restore would stop at it. The archive's own dependencies decide, never names: an index named like the key
    stays."""
    left_out = set(left_out)
    changed = True
    while changed:
        changed = False
        for index, entry in enumerate(parsed):
            if keep[index] and entry.deps & left_out:
                keep[index] = False
                left_out.add(entry.dump_id)
                changed = True
    return keep


def is_partial(manifest):
    selection = manifest.get("selection") or {}
    return bool(selection.get("tables") or selection.get("exclude_tables"))


def _names(prefix_schema, names):
    return tuple("%s %s " % (prefix_schema, n) for n in names)


_PG_CLASS = 1259
_NO_IDS = (0, 0)


def _table_ids(table):
    """The ids a TOC line of ``table`` can carry, or None for a manifest that did not record them."""
    if table.get("oid") is None:
        return None
    return set([(_PG_CLASS, table["oid"]), (0, table["oid"])] + [tuple(part) for part in table["parts"]])  # TABLE, TABLE DATA


def _is_data_of(entry, table):
    if table.get("oid") is not None:
        return entry.ids == (0, table["oid"])
    return entry.rest.startswith(_names(table["schema"], [table["name"]]))


def _owns(entry, table, ids):
    """Does this entry belong to ``table`` (a manifest entry, whose ``_table_ids`` are ``ids``)?"""
    if ids is not None and entry.ids != _NO_IDS:
        return entry.ids in ids
    return entry.rest.startswith(_names(table["schema"], [table["name"]])) or entry.rest.startswith(
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


def _keeps(entry, tables, owned, attached, into_existing):
    """Whether a subset restore keeps ``entry`` (foreign keys are decided by the caller)."""
    desc = entry.desc
    if not into_existing:
        return desc != "TABLE DATA" or any(_is_data_of(entry, t) for t in tables)
    if desc == "INDEX" and entry.rest in attached:
        return False
    if desc in _DECORATIONS:
        return any(_decorates(entry.rest, t) for t in tables)
    return desc is not None and desc != "FK CONSTRAINT" and any(_owns(entry, t, ids) for t, ids in owned)


def choose(listing, manifest, tables=(), into_existing=False):
    """The lines to restore, and a short account of what was left out."""
    chosen, skipped = [], {}
    parsed = entries(listing)
    # A partition's indexes that belong to its parent's indexes: in an existing database the parent's
    # index is there, so ATTACH PARTITION creates them, and creating them again would fail.
    attached = set(entry.rest for entry in parsed if entry.desc == "INDEX ATTACH")
    owned = [(table, _table_ids(table)) for table in tables]
    drop_keys = bool(tables) or is_partial(manifest)
    keeps, left_out = [], []
    for entry in parsed:
        if entry.desc == "FK CONSTRAINT" and drop_keys:
            keeps.append(False)
            left_out.append(entry.dump_id)
        else:
            keeps.append(not tables or _keeps(entry, tables, owned, attached, into_existing))
    for entry, keep in zip(parsed, _without_dependents(parsed, keeps, left_out)):
        if keep:
            chosen.append(entry.line)
        else:
            skipped[entry.desc or "other"] = skipped.get(entry.desc or "other", 0) + 1
    for table in tables:
        if not any(entry.desc == "TABLE DATA" and _is_data_of(entry, table) for entry in parsed):
            raise RestoreError("table %s.%s was not found in the archive's table of contents" % (table["schema"], table["name"]))
    return chosen, skipped
