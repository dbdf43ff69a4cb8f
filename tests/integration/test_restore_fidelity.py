"""Restore fidelity (issue 13, section 6) and a restore decided once (issue 12, item 5).

One small database (tests/integration/fidelity_schema.sql) with what PostgreSQL's regression database showed a
restore getting wrong: a foreign key with a comment that a table subset leaves out, an index named like that key,
a partitioned parent two levels deep, and database-level settings, grants and a comment.
"""

import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from scripts import pgcluster

HERE = os.path.dirname(os.path.abspath(__file__))
READER = "lb fid reader"


def quote(name):
    return '"%s"' % name.replace('"', '""')


@pytest.fixture(scope="module")
def fidelity(pg):
    db = "fidelity_%s" % uuid.uuid4().hex[:6]
    pg.psql("DO $$ BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END $$" % quote(READER))
    pg.psql("CREATE DATABASE %s" % db)
    subprocess.run(
        [os.path.join(pg.info["bin_dir"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.socket_dir, "-p", str(pg.port),
         "-U", "postgres", "-d", db, "-f", os.path.join(HERE, "fidelity_schema.sql")],
        check=True, capture_output=True,
    )
    pg.psql("ALTER DATABASE %s SET work_mem = '7MB'; ALTER DATABASE %s SET search_path = public, \"odd schema\"; "
            "ALTER ROLE %s IN DATABASE %s SET statement_timeout = '5s'; "
            "REVOKE CONNECT ON DATABASE %s FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s; "
            "COMMENT ON DATABASE %s IS 'orders of DATABASE %s, with a quote''s worth'"
            % (db, db, quote(READER), db, db, db, quote(READER), db, db))
    return db


@pytest.fixture
def config(make_config, fidelity):
    return make_config({"full": {"db": fidelity}, "orders": {"db": fidelity, "tables": ["orders"]},
                        "readings": {"db": fidelity, "tables": ["readings"]}})


@pytest.fixture
def full_backup(engine, config):
    return engine.catalog.resolve(path=engine.dump.backup(config, "full", via="test")["path"])


def restore(engine, config, entry, target, **options):
    return engine.restore.restore(config, entry, engine.restore.Options(target, **options), via="test")


def rows(pg, db, sql):
    return pg.psql(sql, db=db).strip()


def test_restore_decides_once(engine, pg, config, full_backup, age_key, monkeypatch):
    """The plan chooses the tables and the streamed table once; restore and the restore-level check execute it."""
    calls = {"select": 0, "streamed": 0, "plan": 0}
    for name, key in (("_select_tables", "select"), ("_streamed_table", "streamed"), ("plan", "plan")):
        real = getattr(engine.restore, name)

        def counted(*args, _real=real, _key=key, **kwargs):
            calls[_key] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(engine.restore, name, counted)
    the_plan = engine.restore.plan(config, full_backup, engine.restore.Options("once", jobs=2, identity_file=age_key[0]))
    assert the_plan.summary()["method"].startswith("decrypted temporary file, 2 jobs")
    calls.update(select=0, streamed=0, plan=0)
    result = restore(engine, config, full_backup, "decided once", jobs=2, identity_file=age_key[0])
    assert calls == {"select": 1, "streamed": 1, "plan": 1}
    assert result["rows"] == sum(t["rows"] for t in full_backup.manifest["tables"])
    calls.update(select=0, streamed=0, plan=0)
    engine.verify.verify(config, full_backup, "restore", identity_file=age_key[0], via="test")
    assert calls == {"select": 1, "streamed": 1, "plan": 1}


def comments(pg, db):
    return rows(pg, db, "SELECT c.conname || ': ' || obj_description(c.oid, 'pg_constraint') FROM pg_constraint c "
                        "WHERE obj_description(c.oid, 'pg_constraint') IS NOT NULL UNION ALL "
                        "SELECT 'index ' || relname || ': ' || obj_description(oid, 'pg_class') FROM pg_class "
                        "WHERE relkind = 'i' AND obj_description(oid, 'pg_class') IS NOT NULL ORDER BY 1")


def test_subset_leaves_out_the_comment_of_a_foreign_key_it_leaves_out(engine, pg, config, full_backup, age_key):
    """A table subset drops foreign keys; their comments go with them (by the archive's dependencies), while an
    index with the same name as a dropped key stays with its comment."""
    for jobs, target in ((1, "subset one job"), (2, "subset two jobs")):
        result = restore(engine, config, full_backup, target, jobs=jobs, identity_file=age_key[0], tables=["orders"])
        assert result["foreign_keys"] == "skipped (partial data)"
        assert rows(pg, target, "SELECT count(*) FROM orders") == "200"
        assert rows(pg, target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == "0"
        assert comments(pg, target) == "index orders_customer_fk: an index, not the constraint"


def test_partial_profile_restores_and_verifies_despite_commented_foreign_keys(engine, pg, config, age_key):
    backup = engine.dump.backup(config, "orders", via="test")
    entry = engine.catalog.resolve(path=backup["path"])
    verified = engine.verify.verify(config, entry, "restore", identity_file=age_key[0], via="test")
    assert [t["table"] for t in verified["tables"]] == ["public.orders"]
    restore(engine, config, entry, "partial profile", identity_file=age_key[0])
    assert rows(pg, "partial profile", "SELECT count(*) FROM orders") == "200"
    assert comments(pg, "partial profile") == "index orders_customer_fk: an index, not the constraint"


def test_subset_into_an_existing_database_leaves_out_the_comment_of_its_foreign_key(engine, pg, config, full_backup,
                                                                                    fidelity, age_key):
    target = "subset existing fk"
    pg.psql("CREATE DATABASE %s TEMPLATE %s" % (quote(target), fidelity))
    pg.psql("ALTER TABLE order_lines DROP CONSTRAINT order_lines_order_fk; DELETE FROM orders WHERE id > 100", db=target)
    restore(engine, config, full_backup, target, create=False, clean=True, tables=["orders"], identity_file=age_key[0])
    assert rows(pg, target, "SELECT count(*) FROM orders") == "200"


LEAVES = ["public.readings_2023", "public.readings_2024_low", "public.readings_2024_rest"]


def test_a_partitioned_parent_means_its_partitions(engine, pg, config, full_backup, age_key):
    """The profile option ``tables`` takes a partitioned parent; so does a restore of a table subset."""
    backup = engine.dump.backup(config, "readings", via="test")
    assert [t["table"] for t in engine.restore.plan(config, full_backup, engine.restore.Options(
        "x", tables=["readings"], identity_file=age_key[0])).summary()["tables"]] == LEAVES
    assert sorted(t["schema"] + "." + t["name"] for t in backup["tables"]) == LEAVES
    for entry, target, name in ((full_backup, "parent from full", '"public"."readings"'),
                                (engine.catalog.resolve(path=backup["path"]), "parent from profile", "public.readings")):
        result = restore(engine, config, entry, target, identity_file=age_key[0], tables=[name])
        assert [t["table"] for t in result["tables"]] == LEAVES
        assert rows(pg, target, "SELECT count(*) FROM readings") == "1000"
        assert rows(pg, target, "SELECT count(*) FROM orders") == "0"
    # An inner parent means its own partitions, named once each even when also named alone.
    result = restore(engine, config, full_backup, "inner parent", identity_file=age_key[0],
                     tables=["readings_2024", "public.readings_2024_low"])
    assert [t["table"] for t in result["tables"]] == LEAVES[1:]


def database_level(pg, db):
    """Settings (the database's and a role's in it), grants and comment of database ``db``."""
    literal = "'%s'" % db.replace("'", "''")
    return pg.psql(
        "SELECT coalesce(r.rolname, '*') || ': ' || array_to_string(s.setconfig, ', ') FROM pg_db_role_setting s "
        "JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE d.datname = %s ORDER BY 1; "
        "SELECT array_to_string(ARRAY(SELECT a::text FROM unnest(datacl) a WHERE a::text NOT LIKE 'postgres=%%' ORDER BY 1), ' ') "
        "FROM pg_database WHERE datname = %s; "
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s" % (literal, literal, literal)
    ).strip().splitlines()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_new_database_carries_the_settings_grants_and_comment_of_the_source(engine, pg, config, full_backup, fidelity,
                                                                              age_key, jobs):
    source = database_level(pg, fidelity)
    assert source == ['*: work_mem=7MB, search_path=public, "odd schema"', "lb fid reader: statement_timeout=5s",
                      '"lb fid reader"=Tc/postgres =T/postgres',  # PUBLIC keeps TEMPORARY, lost CONNECT
                      "orders of DATABASE %s, with a quote's worth" % fidelity]
    target = "Fidelity copy \"%d\" ü" % jobs
    the_plan = engine.restore.plan(config, full_backup, engine.restore.Options(target, jobs=jobs, identity_file=age_key[0]))
    assert the_plan.summary()["database_properties"] == "from the archive: settings (ALTER DATABASE/ROLE ... SET), comment, grants"
    result = restore(engine, config, full_backup, target, jobs=jobs, identity_file=age_key[0])
    assert result["database_properties_applied"] == ["COMMENT", "ACL", "DATABASE PROPERTIES"]
    assert database_level(pg, target) == source
    assert rows(pg, target, "SELECT count(*) FROM orders") == "200"


def test_no_owner_leaves_out_the_database_grants_and_an_existing_database_keeps_its_own(engine, pg, config, full_backup,
                                                                                        fidelity, age_key):
    result = restore(engine, config, full_backup, "fidelity no owner", no_owner=True, identity_file=age_key[0])
    assert result["database_properties_applied"] == ["COMMENT", "DATABASE PROPERTIES"]
    assert database_level(pg, "fidelity no owner")[2] == ""
    pg.psql("CREATE DATABASE fidelity_existing")
    result = restore(engine, config, full_backup, "fidelity_existing", create=False, identity_file=age_key[0])
    assert result["database_properties"] == "kept as the target has them" and result["database_properties_applied"] == []
    assert database_level(pg, "fidelity_existing") == []  # no settings, default grants, no comment


@pytest.fixture(scope="module")
def logging_cluster():
    """A cluster of this module's own that logs every statement (never the shared session cluster's settings)."""
    cluster = pgcluster.create()
    cluster.psql("ALTER SYSTEM SET log_statement = 'all'")
    cluster.psql("SELECT pg_reload_conf()")
    yield cluster
    cluster.destroy()


def test_globals_restore_keeps_role_passwords_out_of_a_server_log_that_logs_every_statement(
        engine, pg, config, make_config, fidelity, age_key, logging_cluster):
    role = "lb fid secret %s" % uuid.uuid4().hex[:6]
    pg.psql("CREATE ROLE %s LOGIN PASSWORD 'swordfish-%s'" % (quote(role), uuid.uuid4().hex))
    backup = engine.dump.backup(config, "full", via="test")
    verifier = [line for line in engine.restore.filter_globals(_globals_text(engine, backup, age_key), set(), set()).splitlines()
                if role in line and "SCRAM-SHA-256$" in line]
    assert verifier, "the backup's globals hold the role's SCRAM verifier"
    secret = verifier[0].split("'")[-2]

    target_config = make_config({"full": {"db": fidelity}}, connection=logging_cluster.connection())
    entry = engine.catalog.resolve(path=backup["path"])
    restore(engine, target_config, entry, "with globals", globals=True, identity_file=age_key[0])
    assert logging_cluster.psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % role).strip() == secret
    log = open(logging_cluster.info["log"], encoding="utf-8").read()
    assert 'statement: CREATE DATABASE "with globals"' in log  # statements are logged here ...
    assert secret not in log and "SCRAM-SHA-256$" not in log  # ... but not the passwords

    # Who cannot turn statement logging off is refused before anything is sent.
    restorer = "lb fid restorer"
    logging_cluster.psql("CREATE ROLE %s LOGIN CREATEROLE CREATEDB PASSWORD 'restorer-pw'" % quote(restorer))
    logging_cluster.psql("DROP ROLE %s" % quote(role))
    weak = make_config({"full": {"db": fidelity}}, connection=logging_cluster.connection(login_user=restorer, login_password="restorer-pw"))
    refused = pytest.raises(engine.errors.RestoreError, restore, engine, weak, entry, "globals refused", globals=True,
                            identity_file=age_key[0])
    assert "hold role passwords, and this server logs statements (log_statement = all)" in str(refused.value)
    assert "lb fid restorer is not a superuser" in str(refused.value)
    assert logging_cluster.psql("SELECT count(*) FROM pg_roles WHERE rolname = '%s'" % role).strip() == "0"
    log = open(logging_cluster.info["log"], encoding="utf-8").read()
    assert secret not in log and "SCRAM-SHA-256$" not in log


def _globals_text(engine, backup, age_key):
    entry = engine.catalog.resolve(path=backup["path"])
    item = engine.manifest.artifact(entry.manifest, "globals")
    directory = tempfile.mkdtemp()
    try:
        return open(engine.artifacts.decrypt_to_file(entry, item, age_key[0], directory), encoding="utf-8").read()
    finally:
        shutil.rmtree(directory)
