"""Splitting a restore around its largest table (_overlap.py): which table, and which entry goes in which step."""

import pytest

PRE, DATA, POST, NONE = 2, 3, 4, 1


def toc(engine, *rows):
    """(dump id, oid, desc, section, deps) -> TocEntry list, in TOC order."""
    return [engine.offsets.TocEntry(dump_id, oid, desc, section, deps, 1, 0) for dump_id, oid, desc, section, deps in rows]


# A shop: payments is the big one. Orders and customers are the others; refunds point at payments.
SHOP = (
    (2, 16385, "EXTENSION", PRE, []),
    (3, 0, "COMMENT", NONE, [2]),
    (216, 16436, "TABLE", PRE, []),
    (218, 16445, "TABLE", PRE, []),
    (219, 16452, "TABLE", PRE, []),
    (220, 16452, "ACL", NONE, [219]),
    (221, 16460, "TABLE", PRE, []),
    (222, 16470, "MATERIALIZED VIEW", PRE, [219]),
    (3413, 16436, "TABLE DATA", DATA, [216]),
    (3415, 16445, "TABLE DATA", DATA, [218]),
    (3416, 16452, "TABLE DATA", DATA, [219]),
    (3417, 16460, "TABLE DATA", DATA, [221]),
    (3426, 0, "SEQUENCE SET", DATA, [215]),
    (3256, 16443, "CONSTRAINT", POST, [216]),
    (3260, 16451, "CONSTRAINT", POST, [218]),
    (3264, 16468, "CONSTRAINT", POST, [219]),
    (3261, 16469, "INDEX", POST, [219]),
    (3262, 0, "COMMENT", NONE, [3261]),
    (3257, 16472, "INDEX", POST, [218]),
    (3268, 16475, "FK CONSTRAINT", POST, [218, 3256]),
    (3269, 16480, "FK CONSTRAINT", POST, [219, 3260]),
    (3270, 16481, "FK CONSTRAINT", POST, [221, 3264]),
    (3280, 16490, "TRIGGER", POST, [218]),
    (3290, 16470, "MATERIALIZED VIEW DATA", POST, [222]),
    (3295, 16500, "EVENT TRIGGER", POST, []),
)


def test_the_split_of_a_shop(engine):
    parts = engine.overlap.split(toc(engine, *SHOP), 16452)
    # Pre-data streams first; its grant waits for the end, as pg_restore always does with grants.
    assert parts.pre == [2, 3, 216, 218, 219, 221, 222]
    assert parts.lead == [3416]
    # The other tables' rows and what hangs off them alone, while payments loads.
    assert parts.rest == [3413, 3415, 3417, 3426, 3256, 3260, 3257, 3268, 3280]
    # Payments' own indexes and constraints, the comment on its index, foreign keys from and to it (the one from
    # refunds through payments' primary key), and what pg_restore leaves to the end: a materialized view's rows
    # (it may read payments), event triggers (they would fire on the restore's own DDL), grants.
    assert parts.last == [220, 3264, 3261, 3262, 3269, 3270, 3290, 3295]
    every = [row[0] for row in SHOP]
    assert sorted(parts.pre + parts.lead + parts.rest + parts.last) == sorted(every)


def test_dependencies_listed_after_their_dependent_still_count(engine):
    rows = list(SHOP)
    rows.insert(rows.index((3264, 16468, "CONSTRAINT", POST, [219])), (3299, 16599, "INDEX", POST, [3298]))
    rows.append((3298, 16598, "INDEX", POST, [3261]))  # out of order on purpose
    parts = engine.overlap.split(toc(engine, *rows), 16452)
    assert 3299 in parts.last and 3298 in parts.last and 3299 not in parts.rest


def test_a_partition_or_an_unknown_table_is_not_split(engine):
    rows = list(SHOP) + [(3400, 0, "TABLE ATTACH", PRE, [230, 219])]
    assert engine.overlap.split(toc(engine, *rows), 16452) is None
    assert engine.overlap.split(toc(engine, *SHOP), 99999) is None


def table(name, rows, size=None, oid=1):
    entry = {"schema": "public", "name": name, "rows": rows, "oid": oid}
    if size is not None:
        entry["bytes"] = size
    return entry


@pytest.mark.parametrize("tables, jobs, lead", [
    ([table("big", 10, 700), table("small", 90, 300)], 2, "big"),  # sizes decide when the backup has them
    ([table("big", 10, 700), table("small", 90, 300)], 4, "big"),
    ([table("a", 10, 400), table("b", 10, 300), table("c", 10, 300)], 2, None),  # under half: plain -j does as well
    ([table("a", 10, 400), table("b", 10, 300), table("c", 10, 300)], 3, "a"),
    ([table("big", 60), table("small", 40)], 2, "big"),  # rows, for backups from before sizes were recorded
    ([table("only", 5, 100)], 2, "only"),
    ([table("big", 10, 700), table("small", 90, 300)], 1, None),
    ([table("empty", 0, 0)], 2, None),
    ([], 2, None),
])
def test_the_lead_table(engine, tables, jobs, lead):
    chosen = engine.overlap.lead_table({"tables": tables}, jobs)
    assert (chosen["name"] if chosen else None) == lead


def test_no_lead_without_recorded_oids(engine):
    old = [{"schema": "public", "name": "big", "rows": 100}]
    assert engine.overlap.lead_table({"tables": old}, 2) is None
