"""Round trip of a database full of awkward objects: dump (encrypted), restore, compare by content.

One awkward database and one full backup per module. Restores go into a new
database on the same cluster (two jobs) and into a second, fresh cluster (one
job, globals first, so the roles really are created by the restore). The
comparison is by content: an md5 of every table's ordered row text, every
sequence's state, every large object's bytes and ACL, and the schema as
``pg_dump --schema-only`` prints it.
"""

import os
import subprocess
import time

import psycopg2
import pytest

from scripts import pgcluster

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DB = 'Awkward "Ünï" db=1'  # quotes, unicode, a space and '=' (libpq reads that as a connection string)
ROLES = ("lb rt owner", "lb rt reader")
MATERIALIZED = ("sensor_summary", "events_per_kind")  # populated views: their rows follow the tables'

# Every table's rows, whatever their types: the row's text form is the content.
_TABLES = """
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""
_SEQUENCES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' ORDER BY 1, 2
"""
_LARGE_OBJECTS = """
SELECT m.oid::bigint, pg_get_userbyid(m.lomowner), m.lomacl::text, md5(lo_get(m.oid)), length(lo_get(m.oid)),
       obj_description(m.oid, 'pg_largeobject')
  FROM pg_largeobject_metadata m ORDER BY 1
"""


def quote(name):
    return '"%s"' % name.replace('"', '""')


def connect(cluster, db):
    return psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres", password=cluster.password, dbname=db)


def fingerprint(cluster, db):
    """Content of a database: per table (md5 of ordered rows, count), sequences, large objects."""
    conn = connect(cluster, db)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET TimeZone TO 'UTC'; SET extra_float_digits TO 3")
        cur.execute(_TABLES)
        tables = {}
        for schema, name, kind in cur.fetchall():
            qualified = "%s.%s" % (quote(schema), quote(name))
            if kind == "m":
                cur.execute("SELECT relispopulated FROM pg_class WHERE oid = %s::regclass", (qualified,))
                if not cur.fetchone()[0]:
                    tables[(schema, name)] = "not populated"
                    continue
            cur.execute("SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ONLY %s AS t"
                        % qualified if kind == "r" else
                        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM %s AS t" % qualified)
            tables[(schema, name)] = cur.fetchone()
        cur.execute(_SEQUENCES)
        sequences = {}
        for schema, name in cur.fetchall():
            cur.execute("SELECT last_value, is_called FROM %s.%s" % (quote(schema), quote(name)))
            sequences[(schema, name)] = cur.fetchone()
        cur.execute(_LARGE_OBJECTS)
        large_objects = cur.fetchall()
        return {"tables": tables, "sequences": sequences, "large_objects": large_objects}
    finally:
        conn.close()


def schema_text(cluster, db):
    """``pg_dump --schema-only``, without the per-run \\restrict key lines of newer minor releases."""
    env = dict(os.environ, PGPASSWORD=cluster.password, PGDATABASE=db)
    proc = subprocess.run(
        [os.path.join(cluster.info["bin_dir"], "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"],
        capture_output=True, text=True, env=env, check=True,
    )
    return "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def load_awkward(cluster, db):
    for role in ROLES:
        cluster.psql("DO $$ BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END $$" % quote(role).replace("$", ""))
    cluster.psql("CREATE DATABASE %s" % quote(db))
    env = dict(os.environ, PGDATABASE=db)
    subprocess.run(
        [os.path.join(cluster.info["bin_dir"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cluster.socket_dir,
         "-p", str(cluster.port), "-U", "postgres", "-f", os.path.join(HERE, "awkward_schema.sql")],
        check=True, capture_output=True, env=env,
    )


@pytest.fixture(scope="module")
def awkward(pg):
    load_awkward(pg, SOURCE_DB)
    return SOURCE_DB


@pytest.fixture(scope="module")
def source_print(pg, awkward):
    printed = fingerprint(pg, awkward)
    # The fixture really holds what the comparison is meant to catch.
    assert printed["tables"][("Mixed Case", "Customer Accounts")][0] == 2000
    assert printed["tables"][("public", "measurements_2023")][0] > 0
    assert printed["tables"][("public", "nothing_here")][0] == 0
    assert printed["tables"][("public", "never_populated")] == "not populated"
    assert printed["sequences"][("Mixed Case", "Invoice Numbers")] == (4242, True)
    assert printed["sequences"][("public", "not_called_yet")] == (77, False)
    assert [lo[0] for lo in printed["large_objects"]] == [424242, 424243, 424244]
    return printed


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("roundtrip") / "backups")


@pytest.fixture(scope="module")
def config_for(engine, age_key, root):
    def build(cluster, profiles=None):
        return engine.config.validate_config({
            "connection": cluster.connection(),
            "backup_root": root,
            "encryption": {"mode": "age", "recipients": [age_key[1]]},
            "profiles": profiles or {},
        })

    return build


PROFILES = {
    "awkward": {"db": SOURCE_DB, "freshness_columns": {'"ünï cødé"."Täblé 表"': "Quoted \"col\""}},
    "subset": {"db": SOURCE_DB, "tables": ['"ünï cødé"."Täblé 表"', "public.measurements"]},
    "without": {"db": SOURCE_DB, "exclude_tables": ["public.measurements", '"Mixed Case"."Customer Accounts"']},
}


@pytest.fixture(scope="module")
def full_backup(engine, pg, awkward, config_for):
    return engine.dump.backup(config_for(pg, PROFILES), "awkward", via="test")


@pytest.fixture(scope="module")
def other_cluster():
    cluster = pgcluster.create()
    yield cluster
    cluster.destroy()


def restore(engine, config, backup, target, **options):
    entry = engine.catalog.resolve(path=backup["path"])
    return engine.restore.restore(config, entry, engine.restore.Options(target, **options), via="test")


def assert_same(source, restored):
    assert sorted(restored["tables"]) == sorted(source["tables"])
    for table, expected in source["tables"].items():
        assert restored["tables"][table] == expected, "table %s.%s differs after restore" % table
    assert restored["sequences"] == source["sequences"]
    assert restored["large_objects"] == source["large_objects"]


def test_backup_records_every_table_in_the_snapshot(full_backup, source_print):
    rows = dict(((t["schema"], t["name"]), t["rows"]) for t in full_backup["tables"])
    expected = dict((k, v[0]) for k, v in source_print["tables"].items() if v != "not populated" and k[1] not in MATERIALIZED)
    assert rows == expected
    assert [a["name"] for a in full_backup["artifacts"]] == ["Awkward__Ünï__db_1.dump.zst.age", "globals.sql.zst.age"]
    assert full_backup["freshness"][0]["newest"] == "2024-02-29 12:34:56.789+00"


def test_two_job_restore_matches_source(engine, pg, age_key, awkward, full_backup, config_for, source_print):
    target = "Awkward copy \"2\" ü"
    result = restore(engine, config_for(pg), full_backup, target, jobs=2, globals=True, identity_file=age_key[0])
    assert result["changed"] and result["jobs"] == 2 and result["foreign_keys"] == "restored"
    assert result["method"] == "decrypted temporary file, 2 jobs, loading public.events while it decrypts"
    assert_same(source_print, fingerprint(pg, target))
    assert schema_text(pg, target) == schema_text(pg, awkward)


def test_one_job_restore_into_a_fresh_cluster_creates_roles(engine, pg, age_key, awkward, full_backup, config_for, other_cluster,
                                                            source_print):
    target = "restored here"
    config = config_for(other_cluster)
    result = restore(engine, config, full_backup, target, jobs=1, globals=True, identity_file=age_key[0])
    assert result["method"] == "stream, one transaction"
    roles = other_cluster.psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'lb rt %' ORDER BY 1").split("\n")[:2]
    assert roles == list(ROLES)
    assert_same(source_print, fingerprint(other_cluster, target))
    assert schema_text(other_cluster, target) == schema_text(pg, awkward)
    # The target server keeps its own superuser password: later connections still work.
    other_cluster.psql("SELECT 1")
    connect(other_cluster, "postgres").close()


def test_two_job_restore_that_fails_early_leaves_nothing(engine, age_key, full_backup, config_for):
    """Without its roles, the restore fails in pre-data, while the artifact is still being decrypted."""
    bare = pgcluster.create()
    try:
        failed = pytest.raises(engine.errors.RestoreError, restore, engine, config_for(bare), full_backup, "no roles here",
                               jobs=2, identity_file=age_key[0])
        assert "restoring pre-data: pg_restore exited with status 1" in str(failed.value)
        assert 'role "lb rt owner" does not exist' in str(failed.value)
        assert bare.psql("SELECT count(*) FROM pg_database WHERE datname = 'no roles here'").strip() == "0"
    finally:
        bare.destroy()


def test_a_failed_load_of_the_largest_table_stops_the_restore_at_once(engine, pg, age_key, full_backup, config_for,
                                                                      monkeypatch):
    """Fault injected (a server cannot be made to fail one COPY on demand): the largest table's load fails while
    the other tables are restored. The restore stops then, with that failure, and drops the new database."""
    real_run = engine.overlap._run

    def failing_load(argv, env, workdir, name, what, ids, **kwargs):
        if name == "lead":
            time.sleep(0.5)
            raise engine.errors.RestoreError("restoring %s: injected failure" % what)
        if name == "rest":  # a step that only a stop ends soon
            engine.pipeline.run([engine.pipeline.Step("sleep", ["sleep", "60"])], stop=kwargs["stop"])
            return None
        return real_run(argv, env, workdir, name, what, ids, **kwargs)

    monkeypatch.setattr(engine.overlap, "_run", failing_load)
    started = time.time()
    failed = pytest.raises(engine.errors.RestoreError, restore, engine, config_for(pg), full_backup, "load fails", jobs=2,
                           identity_file=age_key[0])
    assert "restoring the rows of public.events: injected failure" in str(failed.value)
    assert time.time() - started < 30
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'load fails'").strip() == "0"


def test_restore_level_verify_passes(engine, pg, age_key, full_backup, config_for):
    entry = engine.catalog.resolve(path=full_backup["path"])
    result = engine.verify.verify(config_for(pg), entry, "restore", identity_file=age_key[0], via="test")
    assert result["verified"] is True
    assert len(result["tables"]) == len(full_backup["tables"])
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'lifeboat_verify_%'").strip() == "0"


# Partial profiles and table subsets, as plugins/module_utils/_postgres/restore_list.py documents them.

TABLE_UNICODE = ("ünï cødé", "Täblé 表")
TABLE_ODD = ('we"ird.schema', 'dot.ted "name"')
TABLE_ACCOUNTS = ("Mixed Case", "Customer Accounts")
PARTITIONS = [("public", "measurements default"), ("public", "measurements_2023"), ("public", "measurements_2024")]


def foreign_keys(cluster, db):
    conn = connect(cluster, db)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        return cur.fetchone()[0]
    finally:
        conn.close()


def assert_rows_only_in(source, restored, with_rows):
    """Every table is defined; the chosen ones hold exactly the source rows, the others none."""
    assert sorted(restored["tables"]) == sorted(source["tables"])
    for table, expected in source["tables"].items():
        if table in with_rows:
            assert restored["tables"][table] == expected, "table %s.%s differs after restore" % table
        elif table[1] in MATERIALIZED:
            continue  # refreshed from whatever rows were restored
        elif expected != "not populated":
            assert restored["tables"][table][0] == 0, "table %s.%s should have been restored empty" % table


@pytest.mark.parametrize("profile, with_rows", [
    ("subset", [TABLE_UNICODE] + PARTITIONS),
    ("without", [TABLE_UNICODE, TABLE_ODD, ("Mixed Case", "Empty But Constrained"), ("public", "bikes"), ("public", "cars"),
                 ("public", "event_kinds"), ("public", "event_notes"), ("public", "events"),
                 ("public", "nothing_here"), ("public", "serial_owner"), ("public", "serial_owner archive"), ("public", "session_cache"),
                 ("public", "vehicles")]),
])
def test_partial_profile_dumps_rows_of_its_tables_and_every_definition(engine, pg, age_key, awkward, config_for,
                                                                       source_print, profile, with_rows):
    config = config_for(pg, PROFILES)
    backup = engine.dump.backup(config, profile, via="test")
    assert sorted((t["schema"], t["name"]) for t in backup["tables"]) == sorted(with_rows)
    assert engine.manifest.read(backup["path"])["selection"] == {
        "tables": PROFILES[profile].get("tables", []), "exclude_tables": PROFILES[profile].get("exclude_tables", [])}

    target = "partial %s" % profile
    restore(engine, config_for(pg), backup, target, identity_file=age_key[0])
    restored = fingerprint(pg, target)
    assert_rows_only_in(source_print, restored, with_rows)
    assert restored["large_objects"] == source_print["large_objects"]
    assert foreign_keys(pg, target) == 0  # may point at tables restored empty: left out

    entry = engine.catalog.resolve(path=backup["path"])
    verified = engine.verify.verify(config, entry, "restore", identity_file=age_key[0], via="test")
    assert [t["table"] for t in verified["tables"]] == ["%s.%s" % t for t in sorted(with_rows)]


def test_table_subset_into_a_new_database(engine, pg, age_key, full_backup, config_for, source_print):
    target = "subset new"
    # Names as the manifest keys them, and quoted SQL-style; both must find the same tables.
    result = restore(engine, config_for(pg), full_backup, target, jobs=2, identity_file=age_key[0],
                     tables=['we"ird.schema.dot.ted "name"', '"Mixed Case"."Customer Accounts"'])
    assert [t["table"] for t in result["tables"]] == ['we"ird.schema.dot.ted "name"', "Mixed Case.Customer Accounts"]
    assert result["foreign_keys"] == "skipped (partial data)"
    restored = fingerprint(pg, target)
    assert_rows_only_in(source_print, restored, [TABLE_ODD, TABLE_ACCOUNTS])
    assert foreign_keys(pg, target) == 0


def test_table_subset_into_an_existing_database_touches_nothing_else(engine, pg, age_key, awkward, full_backup,
                                                                     config_for, source_print):
    target = "subset existing"
    pg.psql("CREATE DATABASE %s TEMPLATE %s" % (quote(target), quote(awkward)))
    pg.psql("DELETE FROM public.serial_owner WHERE id % 3 = 0; SELECT setval('public.serial_owner_id_seq', 5); "
            "REVOKE ALL ON public.serial_owner FROM \"lb rt reader\"; DROP INDEX public.serial_owner_note; "
            "DELETE FROM public.session_cache WHERE k LIKE 'key1%'; "
            "DELETE FROM public.\"serial_owner archive\" WHERE id > 20", db=target)
    before = fingerprint(pg, target)
    assert schema_text(pg, target) != schema_text(pg, awkward)

    refused = pytest.raises(engine.errors.RestoreError, restore, engine, config_for(pg), full_backup, target,
                            create=False, tables=["serial_owner"], identity_file=age_key[0])
    assert "target database subset existing is not empty" in str(refused.value) and "clean=true" in str(refused.value)

    restore(engine, config_for(pg), full_backup, target, create=False, clean=True, tables=["public.serial_owner"],
            identity_file=age_key[0])
    after = fingerprint(pg, target)
    # The chosen table is back whole: rows, owned sequence, index, constraints, grants, comment.
    assert after["tables"][("public", "serial_owner")] == source_print["tables"][("public", "serial_owner")]
    assert after["sequences"][("public", "serial_owner_id_seq")] == (900, True)
    assert schema_text(pg, target) == schema_text(pg, awkward)
    # Everything else is exactly as it was before.
    for table, value in before["tables"].items():
        if table != ("public", "serial_owner"):
            assert after["tables"][table] == value, "table %s.%s was touched" % table
    assert after["tables"][("public", "session_cache")] != source_print["tables"][("public", "session_cache")]
    assert after["tables"][("public", "serial_owner archive")] != source_print["tables"][("public", "serial_owner archive")]
    assert after["large_objects"] == before["large_objects"]


def test_table_subset_into_an_existing_database_stops_at_a_dependent_view(engine, pg, age_key, awkward, full_backup,
                                                                          config_for):
    """Replacing a table a view depends on would touch the view: refused by the server, nothing changed."""
    target = "subset existing view"
    pg.psql("CREATE DATABASE %s TEMPLATE %s" % (quote(target), quote(awkward)))
    pg.psql('DELETE FROM "Mixed Case"."Customer Accounts" WHERE id > 1100', db=target)
    before = fingerprint(pg, target)
    failed = pytest.raises(engine.errors.RestoreError, restore, engine, config_for(pg), full_backup, target, create=False,
                           clean=True, tables=['"Mixed Case"."Customer Accounts"'], identity_file=age_key[0])
    message = str(failed.value)
    assert message.startswith("Failed to restore backup %s into %s: " % (full_backup["id"], target))
    assert 'pg_restore exited with status 1' in message and 'view "Mixed Case"."Happy View" depends on table' in message
    assert "cannot be read back" not in message  # the archive is fine; the server refused the change
    assert fingerprint(pg, target) == before  # one transaction: rolled back


def test_partition_restored_alone_into_an_existing_database(engine, pg, age_key, awkward, full_backup, config_for,
                                                            source_print):
    target = "subset existing partition"
    pg.psql("CREATE DATABASE %s TEMPLATE %s" % (quote(target), quote(awkward)))
    pg.psql("DELETE FROM public.measurements_2023 WHERE sensor = 3", db=target)
    before = fingerprint(pg, target)
    restore(engine, config_for(pg), full_backup, target, create=False, clean=True, tables=["public.measurements_2023"],
            identity_file=age_key[0])
    after = fingerprint(pg, target)
    assert after["tables"][("public", "measurements_2023")] == source_print["tables"][("public", "measurements_2023")]
    assert dict((k, v) for k, v in after["tables"].items() if k != ("public", "measurements_2023")) == dict(
        (k, v) for k, v in before["tables"].items() if k != ("public", "measurements_2023"))
    assert schema_text(pg, target) == schema_text(pg, awkward)  # attached again, with its index
