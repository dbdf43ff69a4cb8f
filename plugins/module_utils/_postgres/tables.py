# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which tables a profile dumps, and the evidence taken from the dump's snapshot.

Every backup contains the definitions of all tables, so it restores into an
empty database on its own; ``tables`` and ``exclude_tables`` only choose
whose rows are included (``pg_dump --exclude-table-data`` for the rest).
Row counts and the newest freshness value are read in the same snapshot as
the dump, so verification can demand exact equality.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._errors import ConfigError, DatabaseError
from .session import query, quote_ident

# Ordinary and partitioned tables of the user, not owned by an extension.
_USER_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY n.nspname, c.relname
"""

_DESCENDANTS = """
WITH RECURSIVE tree(oid) AS (
    SELECT unnest(%s::oid[])
    UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
)
SELECT oid FROM tree
"""


class Table:
    def __init__(self, oid, schema, name, kind):
        self.oid = oid
        self.schema = schema
        self.name = name
        self.kind = kind  # 'r' holds rows, 'p' is a partitioned parent

    @property
    def qualified(self):
        return "%s.%s" % (quote_ident(self.schema), quote_ident(self.name))

    @property
    def key(self):
        return "%s.%s" % (self.schema, self.name)


class Selection:
    """The outcome of resolving a profile against the catalog."""

    def __init__(self, all_tables, data_tables, warnings):
        self.all_tables = all_tables
        self.data_tables = data_tables
        self.warnings = warnings

    @property
    def leaves(self):
        return [t for t in self.data_tables if t.kind == "r"]

    def pg_dump_args(self):
        """``--exclude-table-data`` for every table whose rows are not wanted."""
        wanted = set(t.oid for t in self.data_tables)
        return ["--exclude-table-data=%s" % t.qualified for t in self.all_tables if t.oid not in wanted]


def _quoted_example(name):
    """'My Schema.a.b' -> '"My Schema"."a.b"': a guess at what was meant, to show how quoting is written."""
    schema, _dot, table = name.strip().partition(".")
    return ".".join(quote_ident(part) for part in ((schema, table) if table else (schema,)))


def _resolve(handle, names, option, db):
    """[(oid, name)] for table names written as SQL does (``schema.table``, quoted where needed); a name that is
    not valid SQL or names nothing is a ConfigError naming the entry."""
    found = []
    for name in names:
        try:
            row = query(handle, "SELECT to_regclass(%s)::oid", (name.strip(),))
        except DatabaseError as exc:
            raise ConfigError(
                "%s: %r is not a valid table name (%s); write names with spaces, dots or capitals quoted as in SQL, "
                "for example %s" % (option, name, exc, _quoted_example(name)))
        oid = row[0][0] if row else None
        if oid is None:
            raise ConfigError("%s: table %r does not exist in database %s" % (option, name, db))
        found.append((oid, name))
    return found


def _with_descendants(handle, oids):
    if not oids:
        return set()
    return set(row[0] for row in query(handle, _DESCENDANTS, (list(oids),)))


def select(handle, profile):
    """Resolve ``tables``/``exclude_tables`` in the current snapshot."""
    db = profile["db"]
    all_tables = [Table(*row) for row in query(handle, _USER_TABLES)]
    by_oid = dict((t.oid, t) for t in all_tables)
    # A missing table to exclude is as wrong as a missing table to include: a typo would dump rows meant to stay out.
    included = _resolve(handle, profile["tables"], "tables", db)
    excluded = _resolve(handle, profile["exclude_tables"], "exclude_tables", db)
    warnings = []
    for oid, name in included:
        if oid not in by_oid:
            raise ConfigError("tables: %r in database %s is not a table (views and system tables hold no rows of their own)" % (name, db))
    wanted = _with_descendants(handle, [pair[0] for pair in included]) if included else set(by_oid)
    wanted -= _with_descendants(handle, [pair[0] for pair in excluded])
    data_tables = [t for t in all_tables if t.oid in wanted]
    if len([t for t in data_tables if t.kind == "r"]) < profile["min_tables"]:
        raise ConfigError(
            "database %s has %d tables to dump but profile requires at least %d (min_tables); "
            "is this the right database?" % (db, len([t for t in data_tables if t.kind == "r"]), profile["min_tables"])
        )
    return Selection(all_tables, data_tables, warnings)


def freshness_targets(handle, profile, selection):
    """Check ``freshness_columns`` against the catalog: [(Table, column)]."""
    targets = []
    for name, column in sorted(profile["freshness_columns"].items()):
        oid = _resolve(handle, [name], "freshness_columns", profile["db"])[0][0]
        table = next((t for t in selection.data_tables if t.oid == oid), None)
        if table is None:
            raise ConfigError("freshness_columns: table %s is not part of this profile's data" % name)
        exists = query(
            handle,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s AND attname = %s AND NOT attisdropped",
            (oid, column),
        )
        if not exists:
            raise ConfigError("freshness_columns: column %r does not exist in table %s" % (column, table.key))
        if not (exists[0][0].startswith("timestamp") or exists[0][0] == "date"):
            raise ConfigError(
                "freshness_columns: column %s.%s is %s; a timestamp or date column is needed" % (table.key, column, exists[0][0])
            )
        targets.append((table, column))
    return targets


def _query_table(handle, table, sql):
    """query() naming ``table`` in its error."""
    try:
        return query(handle, sql)
    except DatabaseError as exc:
        raise DatabaseError("%s: %s" % (table.qualified, exc))


def count_rows(handle, tables, sample=False):
    """Exact row counts per table (``ONLY``: children are counted on their own).

    ``sample``: in the same statement (the same snapshot), the content sample of each table with a primary key (see
    ``content_sample``).
    """
    counts = []
    for table in tables:
        key = primary_key(handle, table) if sample else None
        if key:
            rows, sampled, digest = _query_table(handle, table, _sample_sql(table, key))[0]
            counts.append({"schema": table.schema, "name": table.name, "rows": rows,
                           "sample": {"key": key, "buckets": SAMPLE_BUCKETS, "method": SAMPLE_METHOD, "rows": sampled,
                                      "digest": digest}})
            continue
        rows = _query_table(handle, table, "SELECT count(*) FROM ONLY %s" % table.qualified)[0][0]
        counts.append({"schema": table.schema, "name": table.name, "rows": rows})
    return counts


# The content sample: the rows whose primary key hashes into bucket 0 of 16 (hashtext of the key's text), each as
# JSON (independent of DateStyle), md5-hashed; the sum of the hashes' first 60 bits is the digest. Taken at dump time
# in the dump's snapshot with the row count, compared after a drill's restore: a check of the values
# themselves, not only of how many rows there are. A sum needs no sort and no string the size of the sample (an
# ordered string_agg made the pass 4x slower than the count alone). Hashing every key's text is most of its cost.
# JSON text of timestamptz depends on TimeZone: both sides read in UTC.
SAMPLE_BUCKETS = 16
SAMPLE_METHOD = "hashtext(key) & 15 = 0; sum of md5(row_to_json) first 60 bits"


def primary_key(handle, table):
    """Column names of the table's primary key, in key order; [] when it has none."""
    sql = ("SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
           "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
           "WHERE i.indisprimary AND i.indrelid = %s::regclass ORDER BY k.ord")
    return [row[0] for row in query(handle, sql, (table.qualified,))]


def _sample_sql(table, key, count=True):
    # The bucket as the scan's filter, and the count in a scan of its own: PostgreSQL evaluates an expression once per
    # FILTER clause, so two FILTERs hashed every key twice. The same result for 30 % less server CPU at dump time
    # (measured on a cached table; the extra scan reads it again, beside pg_dump reading it too).
    columns = ", ".join("lifeboat_row.%s" % quote_ident(c) for c in key)
    bucket = "(hashtext(ROW(%s)::text) & 15) = 0" % columns
    return ("SELECT {c}count(*), "
            "coalesce(sum(('x' || left(md5(row_to_json(lifeboat_row)::text), 15))::bit(60)::int8::numeric), 0)::text "
            "FROM ONLY {t} AS lifeboat_row WHERE {b}").format(
                c="(SELECT count(*) FROM ONLY %s), " % table.qualified if count else "", b=bucket, t=table.qualified)


def content_sample(handle, table, key):
    """The sample of ``table`` over ``key`` now: {"rows", "digest"} (the drill counts the rows on its own)."""
    sampled, digest = _query_table(handle, table, _sample_sql(table, key, count=False))[0]
    return {"rows": sampled, "digest": digest}


def newest_values(handle, targets):
    """The newest value of each freshness column (the evidence for RPO)."""
    result = []
    for table, column in targets:
        sql = "SELECT max(%s)::text, extract(epoch FROM max(%s))::float8 FROM %s" % (
            quote_ident(column),
            quote_ident(column),
            table.qualified,
        )
        newest, epoch = _query_table(handle, table, sql)[0]
        result.append({"schema": table.schema, "name": table.name, "column": column, "newest": newest, "newest_epoch": epoch})
    return result


_PARTS = """
SELECT t.oid,
       ARRAY(SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = t.oid ORDER BY 1),
       ARRAY(SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
              WHERE d.classid = 'pg_class'::regclass AND d.refobjid = t.oid
                AND s.relkind = 'S' AND d.deptype IN ('a', 'i') ORDER BY 1),
       ARRAY(SELECT DISTINCT ARRAY[d.classid::int8, d.objid::int8] FROM pg_depend d
              WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.deptype IN ('a', 'i', 'S')
                AND d.classid <> 'pg_type'::regclass ORDER BY 1),
       pg_table_size(t.oid),
       ARRAY(WITH RECURSIVE up(oid) AS (
                 SELECT inhparent FROM pg_inherits WHERE inhrelid = t.oid
                 UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid)
             SELECT ARRAY[n.nspname::text, c.relname::text] FROM up JOIN pg_class c ON c.oid = up.oid
               JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY 1)
  FROM unnest(%s::oid[]) AS t(oid)
"""


def table_parts(handle, tables):
    """Per table, what a later restore needs to pick it out with its parts: its OID and the catalog ids of the
    objects that belong to it (indexes, sequences, defaults, constraints, triggers, policies), as the archive's
    table of contents carries them, index and sequence names for the comments and grants that carry none, its
    size on disk, which tells a parallel restore which table to start first, and the [schema, name] of its parents
    (``partition_of``), so that a restore of a partitioned parent, which holds no rows, means its partitions."""
    rows = query(handle, _PARTS, ([t.oid for t in tables],))
    return dict((oid, {"oid": oid, "indexes": list(indexes), "sequences": list(sequences), "parts": [list(p) for p in parts],
                       "bytes": size, "partition_of": [list(a) for a in ancestors]})
                for oid, indexes, sequences, parts, size, ancestors in rows)
