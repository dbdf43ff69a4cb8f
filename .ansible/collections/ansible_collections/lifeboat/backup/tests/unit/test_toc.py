"""_toc.choose on a real ``pg_restore --list`` of the awkward round-trip database (tests/integration/awkward_schema.sql).

The listing below is pg_restore 15's own output for that database; the manifest
parts (indexes, owned sequences) are what the engine records at dump time.
"""
# ruff: noqa: W291  (pg_restore ends entries without an owner with a space: kept as it prints them)

import pytest

LISTING = """\
;
; Archive created at 2026-11-22 07:57:32 UTC
;     dbname: Awk Ünï
;     TOC Entries: 104
;     Compression: 0
;     Dump Version: 1.14-0
;     Format: CUSTOM
;     Integer: 4 bytes
;     Offset: 8 bytes
;     Dumped from database version: 15.20 (Debian 15.20-0+deb12u1)
;     Dumped by pg_dump version: 15.20 (Debian 15.20-0+deb12u1)
;
;
; Selected TOC Entries:
;
10; 2615 17687 SCHEMA - Mixed Case lb rt owner
3723; 0 0 ACL - SCHEMA "Mixed Case" lb rt owner
9; 2615 17688 SCHEMA - we"ird.schema postgres
11; 2615 17689 SCHEMA - ünï cødé postgres
3724; 0 0 ACL - SCHEMA "ünï cødé" postgres
3; 3079 17454 EXTENSION - citext\x20
3725; 0 0 COMMENT - EXTENSION citext\x20
4; 3079 17559 EXTENSION - hstore\x20
3726; 0 0 COMMENT - EXTENSION hstore\x20
2; 3079 17417 EXTENSION - pgcrypto\x20
3727; 0 0 COMMENT - EXTENSION pgcrypto\x20
1017; 1247 17691 TYPE Mixed Case Mood postgres
1020; 1247 17700 DOMAIN Mixed Case positive_amount postgres
1024; 1247 17703 DOMAIN public email postgres
394; 1255 17798 FUNCTION Mixed Case touch "audit"() postgres
395; 1255 17800 FUNCTION public account_count("Mixed Case"."Mood") postgres
3728; 0 0 ACL public FUNCTION account_count(min_mood "Mixed Case"."Mood") postgres
221; 1259 17706 TABLE Mixed Case Customer Accounts lb rt owner
3729; 0 0 COMMENT Mixed Case TABLE "Customer Accounts" lb rt owner
3730; 0 0 ACL Mixed Case COLUMN "Customer Accounts"."E-Mail" lb rt owner
3731; 0 0 ACL Mixed Case COLUMN "Customer Accounts".mood lb rt owner
220; 1259 17705 SEQUENCE Mixed Case Customer Accounts_id_seq lb rt owner
238; 1259 17792 TABLE Mixed Case Empty But Constrained postgres
239; 1259 17801 VIEW Mixed Case Happy View postgres
225; 1259 17739 SEQUENCE Mixed Case Invoice Numbers postgres
233; 1259 17768 TABLE public vehicles postgres
235; 1259 17776 TABLE public bikes postgres
234; 1259 17773 TABLE public cars postgres
229; 1259 17752 TABLE public measurements postgres
232; 1259 17761 TABLE public measurements default postgres
230; 1259 17755 TABLE public measurements_2023 postgres
231; 1259 17758 TABLE public measurements_2024 postgres
241; 1259 17812 MATERIALIZED VIEW public never_populated postgres
226; 1259 17740 SEQUENCE public not_called_yet postgres
237; 1259 17787 TABLE public nothing_here postgres
240; 1259 17805 MATERIALIZED VIEW public sensor_summary postgres
228; 1259 17742 TABLE public serial_owner postgres
3732; 0 0 COMMENT public TABLE serial_owner postgres
3733; 0 0 ACL public TABLE serial_owner postgres
3734; 0 0 ACL public COLUMN serial_owner.note postgres
227; 1259 17741 SEQUENCE public serial_owner_id_seq postgres
3735; 0 0 SEQUENCE OWNED BY public serial_owner_id_seq postgres
3736; 0 0 ACL public SEQUENCE serial_owner_id_seq postgres
236; 1259 17780 TABLE public session_cache postgres
224; 1259 17727 TABLE we"ird.schema dot.ted "name" postgres
223; 1259 17719 TABLE ünï cødé Täblé 表 postgres
3737; 0 0 COMMENT ünï cødé COLUMN "Täblé 表"."värde" postgres
3738; 0 0 ACL ünï cødé TABLE "Täblé 表" postgres
222; 1259 17718 SEQUENCE ünï cødé Täblé 表_ключ_seq postgres
3510; 0 0 TABLE ATTACH public measurements default postgres
3508; 0 0 TABLE ATTACH public measurements_2023 postgres
3509; 0 0 TABLE ATTACH public measurements_2024 postgres
3515; 2604 17745 DEFAULT public serial_owner id postgres
3715; 2613 424242 BLOB - 424242 postgres
3739; 0 0 COMMENT - LARGE OBJECT 424242 postgres
3740; 0 0 ACL - LARGE OBJECT 424242 postgres
3714; 2613 424243 BLOB - 424243 lb rt owner
3713; 2613 424244 BLOB - 424244 postgres
3694; 0 17706 TABLE DATA Mixed Case Customer Accounts lb rt owner
3710; 0 17792 TABLE DATA Mixed Case Empty But Constrained postgres
3707; 0 17776 TABLE DATA public bikes postgres
3706; 0 17773 TABLE DATA public cars postgres
3704; 0 17761 TABLE DATA public measurements default postgres
3702; 0 17755 TABLE DATA public measurements_2023 postgres
3703; 0 17758 TABLE DATA public measurements_2024 postgres
3709; 0 17787 TABLE DATA public nothing_here postgres
3701; 0 17742 TABLE DATA public serial_owner postgres
3708; 0 17780 TABLE DATA public session_cache postgres
3705; 0 17768 TABLE DATA public vehicles postgres
3697; 0 17727 TABLE DATA we"ird.schema dot.ted "name" postgres
3696; 0 17719 TABLE DATA ünï cødé Täblé 表 postgres
3741; 0 0 SEQUENCE SET Mixed Case Customer Accounts_id_seq lb rt owner
3742; 0 0 SEQUENCE SET Mixed Case Invoice Numbers postgres
3743; 0 0 SEQUENCE SET public not_called_yet postgres
3744; 0 0 SEQUENCE SET public serial_owner_id_seq postgres
3745; 0 0 SEQUENCE SET ünï cødé Täblé 表_ключ_seq postgres
3716; 0 0 BLOBS - BLOBS\x20
3520; 2606 17717 CONSTRAINT Mixed Case Customer Accounts Customer Accounts_E-Mail_key lb rt owner
3522; 2606 17715 CONSTRAINT Mixed Case Customer Accounts Customer Accounts_pkey lb rt owner
3539; 2606 17797 CONSTRAINT Mixed Case Empty But Constrained Empty But Constrained_pkey postgres
3529; 2606 17750 CONSTRAINT public serial_owner serial_owner_pkey postgres
3537; 2606 17786 CONSTRAINT public session_cache session_cache_pkey postgres
3535; 2606 17772 CONSTRAINT public vehicles vehicles_pkey postgres
3526; 2606 17733 CONSTRAINT we"ird.schema dot.ted "name" dot.ted "name"_pkey postgres
3524; 2606 17726 CONSTRAINT ünï cødé Täblé 表 Täblé 表_pkey postgres
3530; 1259 17764 INDEX public measurements_sensor_idx postgres
3533; 1259 17767 INDEX public measurements default_sensor_taken_at_idx postgres
3531; 1259 17765 INDEX public measurements_2023_sensor_taken_at_idx postgres
3532; 1259 17766 INDEX public measurements_2024_sensor_taken_at_idx postgres
3540; 1259 17811 INDEX public sensor_summary_sensor postgres
3527; 1259 17751 INDEX public serial_owner_note postgres
3543; 0 0 INDEX ATTACH public measurements default_sensor_taken_at_idx postgres
3541; 0 0 INDEX ATTACH public measurements_2023_sensor_taken_at_idx postgres
3542; 0 0 INDEX ATTACH public measurements_2024_sensor_taken_at_idx postgres
3545; 2620 17799 TRIGGER ünï cødé Täblé 表 Touch Row postgres
3544; 2606 17734 FK CONSTRAINT we"ird.schema dot.ted "name" dot.ted "name"_Order_fkey postgres
3691; 0 17719 ROW SECURITY ünï cødé Täblé 表 postgres
3692; 3256 17817 POLICY ünï cødé Täblé 表 only even "keys" postgres
2334; 826 17816 DEFAULT ACL ünï cødé DEFAULT PRIVILEGES FOR TABLES postgres
3711; 0 17805 MATERIALIZED VIEW DATA public sensor_summary postgres
"""

SERIAL_OWNER = {"schema": "public", "name": "serial_owner", "rows": 40,
                "indexes": ["serial_owner_note", "serial_owner_pkey"], "sequences": ["serial_owner_id_seq"]}
PARTITION = {"schema": "public", "name": "measurements_2023", "rows": 5111,
             "indexes": ["measurements_2023_sensor_taken_at_idx"], "sequences": []}
UNICODE = {"schema": "ünï cødé", "name": "Täblé 表", "rows": 505,
           "indexes": ["Täblé 表_pkey"], "sequences": ["Täblé 表_ключ_seq"]}
# The same tables as a manifest records them since table OIDs and their parts' catalog ids are kept
WITH_IDS = {
    "serial_owner": dict(SERIAL_OWNER, oid=17742, parts=[[1259, 17741], [1259, 17751], [2604, 17745], [2606, 17750]]),
    "measurements_2023": dict(PARTITION, oid=17755, parts=[[1259, 17765]]),
    "Täblé 表": dict(UNICODE, oid=17719, parts=[[1259, 17718], [2606, 17726], [2620, 17799], [3256, 17817]]),
}
FULL = {"selection": {"tables": [], "exclude_tables": []}}
PARTIAL = {"selection": {"tables": ["public.measurements"], "exclude_tables": []}}


def tag(line):
    """'3701; 0 17742 TABLE DATA public serial_owner postgres' -> 'TABLE DATA public serial_owner postgres'."""
    return line.split(" ", 3)[3]


def test_entries_parse_every_line_with_the_longest_description(engine):
    parsed = engine.toc.entries(LISTING)
    assert len(parsed) == len([line for line in LISTING.splitlines() if line and not line.startswith(";")])
    kinds = dict((tag(entry.line), entry.desc) for entry in parsed)
    assert kinds["TABLE DATA public serial_owner postgres"] == "TABLE DATA"
    assert kinds["TABLE public serial_owner postgres"] == "TABLE"
    assert kinds["SEQUENCE OWNED BY public serial_owner_id_seq postgres"] == "SEQUENCE OWNED BY"
    assert kinds["SEQUENCE SET public serial_owner_id_seq postgres"] == "SEQUENCE SET"
    assert kinds["INDEX ATTACH public measurements_2023_sensor_taken_at_idx postgres"] == "INDEX ATTACH"
    assert kinds['FK CONSTRAINT we"ird.schema dot.ted "name" dot.ted "name"_Order_fkey postgres'] == "FK CONSTRAINT"
    assert kinds["ROW SECURITY ünï cødé Täblé 表 postgres"] == "ROW SECURITY"
    assert kinds["ACL public TABLE serial_owner postgres"] == "ACL"
    assert kinds["MATERIALIZED VIEW DATA public sensor_summary postgres"] is None
    rest = dict((tag(entry.line), entry.rest) for entry in parsed)
    assert rest["TABLE DATA ünï cødé Täblé 表 postgres"] == "ünï cødé Täblé 表 postgres"


def test_full_backup_restores_everything(engine):
    chosen, skipped = engine.toc.choose(LISTING, FULL)
    assert chosen == [entry.line for entry in engine.toc.entries(LISTING)] and skipped == {}


def test_partial_backup_leaves_out_only_foreign_keys(engine):
    chosen, skipped = engine.toc.choose(LISTING, PARTIAL)
    assert skipped == {"FK CONSTRAINT": 1}
    assert not [line for line in chosen if " FK CONSTRAINT " in line]
    assert len(chosen) == len(engine.toc.entries(LISTING)) - 1


def test_subset_into_a_new_database_keeps_definitions_and_only_chosen_rows(engine):
    chosen, skipped = engine.toc.choose(LISTING, FULL, [SERIAL_OWNER, UNICODE])
    data = sorted(tag(line) for line in chosen if " TABLE DATA " in line)
    assert data == ["TABLE DATA public serial_owner postgres", "TABLE DATA ünï cødé Täblé 表 postgres"]
    all_data = [line for line in LISTING.splitlines() if " TABLE DATA " in line]
    assert skipped == {"TABLE DATA": len(all_data) - 2, "FK CONSTRAINT": 1}
    # every definition stays: tables, views, functions, sequences and their values, large objects
    for wanted in ("TABLE Mixed Case Customer Accounts lb rt owner", "VIEW Mixed Case Happy View postgres",
                   "SEQUENCE SET Mixed Case Invoice Numbers postgres", "BLOBS - BLOBS ",
                   "MATERIALIZED VIEW DATA public sensor_summary postgres", "POLICY ünï cødé Täblé 表 only even \"keys\" postgres"):
        assert wanted in [tag(line) for line in chosen]


def recorded(table, ids):
    return WITH_IDS[table["name"]] if ids else table


@pytest.mark.parametrize("ids", [False, True], ids=["names", "catalog ids"])
def test_subset_into_an_existing_database_is_the_table_and_its_parts_only(engine, ids):
    chosen, skipped = engine.toc.choose(LISTING, FULL, [recorded(SERIAL_OWNER, ids)], into_existing=True)
    assert [tag(line) for line in chosen] == [
        "TABLE public serial_owner postgres",
        "COMMENT public TABLE serial_owner postgres",
        "ACL public TABLE serial_owner postgres",
        "ACL public COLUMN serial_owner.note postgres",
        "SEQUENCE public serial_owner_id_seq postgres",
        "SEQUENCE OWNED BY public serial_owner_id_seq postgres",
        "ACL public SEQUENCE serial_owner_id_seq postgres",
        "DEFAULT public serial_owner id postgres",
        "TABLE DATA public serial_owner postgres",
        "SEQUENCE SET public serial_owner_id_seq postgres",
        "CONSTRAINT public serial_owner serial_owner_pkey postgres",
        "INDEX public serial_owner_note postgres",
    ]
    assert sum(skipped.values()) == len(engine.toc.entries(LISTING)) - len(chosen)


@pytest.mark.parametrize("ids", [False, True], ids=["names", "catalog ids"])
def test_subset_into_an_existing_database_with_quoted_unicode_names(engine, ids):
    chosen = engine.toc.choose(LISTING, FULL, [recorded(UNICODE, ids)], into_existing=True)[0]
    assert [tag(line) for line in chosen] == [
        "TABLE ünï cødé Täblé 表 postgres",
        'COMMENT ünï cødé COLUMN "Täblé 表"."värde" postgres',
        'ACL ünï cødé TABLE "Täblé 表" postgres',
        "SEQUENCE ünï cødé Täblé 表_ключ_seq postgres",
        "TABLE DATA ünï cødé Täblé 表 postgres",
        "SEQUENCE SET ünï cødé Täblé 表_ключ_seq postgres",
        "CONSTRAINT ünï cødé Täblé 表 Täblé 表_pkey postgres",
        "TRIGGER ünï cødé Täblé 表 Touch Row postgres",
        "ROW SECURITY ünï cødé Täblé 表 postgres",
        'POLICY ünï cødé Täblé 表 only even "keys" postgres',
    ]


@pytest.mark.parametrize("ids", [False, True], ids=["names", "catalog ids"])
def test_partition_into_an_existing_database_leaves_its_attached_index_to_attach(engine, ids):
    chosen, skipped = engine.toc.choose(LISTING, FULL, [recorded(PARTITION, ids)], into_existing=True)
    assert [tag(line) for line in chosen] == [
        "TABLE public measurements_2023 postgres",
        "TABLE ATTACH public measurements_2023 postgres",
        "TABLE DATA public measurements_2023 postgres",
        # ATTACH PARTITION made and attached the index already; attaching it again is a no-op
        "INDEX ATTACH public measurements_2023_sensor_taken_at_idx postgres",
    ]
    assert skipped["INDEX ATTACH"] == 2


PREFIXED = """\
201; 1259 16400 TABLE public orders app
202; 1259 16410 TABLE public orders archive app
203; 2604 16405 DEFAULT public orders id app
204; 2604 16415 DEFAULT public orders archive id app
3001; 0 16400 TABLE DATA public orders app
3002; 0 16410 TABLE DATA public orders archive app
3101; 2606 16407 CONSTRAINT public orders orders_pkey app
3102; 2606 16417 CONSTRAINT public orders archive orders archive_pkey app
"""
ORDERS = {"schema": "public", "name": "orders", "rows": 3, "indexes": ["orders_pkey"], "sequences": [],
          "oid": 16400, "parts": [[2604, 16405], [2606, 16407]]}


@pytest.mark.parametrize("into_existing", [False, True])
def test_a_table_whose_name_starts_another_is_told_apart_by_its_ids(engine, into_existing):
    """'public orders app' is also the start of 'public orders archive app': only the ids say which is which."""
    chosen = engine.toc.choose(PREFIXED, FULL, [ORDERS], into_existing=into_existing)[0]
    assert [line.split(";")[0] for line in chosen if " orders archive " in line] == ([] if into_existing else ["202", "204", "3102"])
    assert [line.split(";")[0] for line in chosen if " TABLE DATA " in line] == ["3001"]


def test_a_table_missing_from_the_archive_is_an_error(engine):
    ghost = {"schema": "public", "name": "ghost", "rows": 1, "indexes": [], "sequences": []}
    with pytest.raises(engine.errors.RestoreError, match="table public.ghost was not found in the archive's table of contents"):
        engine.toc.choose(LISTING, FULL, [ghost])


def test_is_partial(engine):
    assert not engine.toc.is_partial(FULL) and not engine.toc.is_partial({})
    assert engine.toc.is_partial(PARTIAL)
    assert engine.toc.is_partial({"selection": {"tables": [], "exclude_tables": ["public.big"]}})
