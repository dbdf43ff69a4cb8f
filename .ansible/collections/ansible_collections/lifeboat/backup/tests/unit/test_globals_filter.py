"""_restore.filter_globals on pg_dumpall --globals-only text: objects that exist are left alone, quoted or not."""

GLOBALS = """\
CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';
CREATE ROLE "lb rt owner";
ALTER ROLE "lb rt owner" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN;
CREATE ROLE "new ""quoted"" role";
ALTER ROLE "new ""quoted"" role" WITH NOLOGIN;
GRANT app TO "lb rt owner" GRANTED BY postgres;
CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';
CREATE TABLESPACE "slow disks" OWNER postgres LOCATION '/srv/slow';
CREATE TABLESPACE "new space" OWNER postgres LOCATION '/srv/new';
"""


def test_existing_roles_and_tablespaces_are_not_created_again(engine):
    kept = engine.restore.filter_globals(GLOBALS, roles={"app", "lb rt owner", "postgres"}, tablespaces={"fast", "slow disks"})
    assert kept.splitlines() == [
        'CREATE ROLE "new ""quoted"" role";',
        'ALTER ROLE "new ""quoted"" role" WITH NOLOGIN;',
        'GRANT app TO "lb rt owner" GRANTED BY postgres;',
        "CREATE TABLESPACE \"new space\" OWNER postgres LOCATION '/srv/new';",
    ]


def test_nothing_exists_yet_keeps_everything(engine):
    assert engine.restore.filter_globals(GLOBALS, roles=set(), tablespaces=set()) == GLOBALS
