"""Restore fidelity (issue 13, section 6) and a restore decided once (issue 12, item 5).

One small database (tests/integration/fidelity_schema.sql) with what PostgreSQL's regression database showed a
restore getting wrong: a foreign key with a comment that a table subset leaves out, an index named like that key,
a partitioned parent two levels deep, and database-level settings, grants and a comment.
"""

import os
import subprocess
import uuid

import pytest

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
