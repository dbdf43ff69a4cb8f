"""Bad input (issue 13, section 5): one clear error naming the entry and the fix, never a traceback or silence."""

import json
import os
import uuid

import pytest

EXIT_CONFIG = 2


@pytest.fixture
def db(pg):
    name = "bad_input_%s" % uuid.uuid4().hex[:6]
    pg.psql("CREATE DATABASE %s" % name)
    pg.psql('CREATE SCHEMA "My Schema"; CREATE TABLE "My Schema"."a.b" (id int); INSERT INTO "My Schema"."a.b" VALUES (1); '
            "CREATE TABLE public.kept (id int); INSERT INTO public.kept SELECT generate_series(1, 100)", db=name)
    return name


@pytest.fixture
def settings(pg, age_key, backup_root, db):
    def build(**profile):
        return {"connection": pg.connection(), "backup_root": backup_root,
                "encryption": {"mode": "age", "recipients": [age_key[1]]},
                "profiles": {"app": dict({"db": db, "compression_level": 1}, **profile)}}

    return build


def one_error(proc, rc=EXIT_CONFIG):
    assert proc.returncode in ((rc,) if isinstance(rc, int) else rc), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifeboat: "), proc.stderr
    return lines[0]


def test_exclude_tables_naming_a_missing_table_is_an_error_like_tables(cli, settings, backup_root, db):
    message = one_error(cli(settings(exclude_tables=["public.kept", "public.gone"]), "backup", "--profile", "app"))
    assert "exclude_tables: table 'public.gone' does not exist in database %s" % db in message
    profile_dir = os.path.join(backup_root, "app")
    assert not os.path.exists(profile_dir) or not [n for n in os.listdir(profile_dir) if not n.startswith(".")]


@pytest.mark.parametrize("option", ["tables", "exclude_tables"])
def test_an_unquoted_dotted_name_says_how_to_quote_it(cli, settings, option):
    message = one_error(cli(settings(**{option: ["My Schema.a.b"]}), "backup", "--profile", "app"))
    assert "%s: 'My Schema.a.b' is not a valid table name" % option in message
    assert '"My Schema"."a.b"' in message  # how to write it


def test_a_quoted_dotted_name_works(cli, settings):
    proc = cli(settings(tables=['"My Schema"."a.b"']), "--json", "backup", "--profile", "app", check=0)
    assert [t["schema"] + "." + t["name"] for t in json.loads(proc.stdout)["tables"]] == ["My Schema.a.b"]


def test_warnings_are_printed_in_text_mode_too(cli, settings, backup_root):
    """A verification whose result cannot be recorded on a read-only backup directory says so, in text too."""
    config = settings()
    cli(config, "backup", "--profile", "app", check=0)
    backup = os.path.join(backup_root, "app", sorted(n for n in os.listdir(os.path.join(backup_root, "app"))
                                                     if not n.startswith("."))[-1])
    os.chmod(backup, 0o500)
    try:
        if os.access(backup, os.W_OK):  # root writes anyway: make recording fail another way
            os.chmod(backup, 0o700)
            os.mkdir(os.path.join(backup, "verification.json"))
        proc = cli(config, "verify", "--profile", "app", "--level", "checksum", check=0)
    finally:
        os.chmod(backup, 0o700)
    assert "passed checksum verification" in proc.stdout
    assert "lifeboat: warning: verification result not recorded in the backup directory" in proc.stderr


def test_an_identity_readable_by_others_is_refused_like_ssh(cli, settings, age_key, tmp_path):
    config = settings()
    cli(config, "backup", "--profile", "app", check=0)
    loose = tmp_path / "key.txt"
    loose.write_bytes(open(age_key[0], "rb").read())
    loose.chmod(0o644)
    # verify's exit code is the catalog's business (issue 13, section 3: usage errors before recording); the message:
    message = one_error(cli(config, "verify", "--profile", "app", "--level", "archive", "--identity", str(loose)), rc=(2, 6))
    assert "permissions 0644 for %s are too open" % loose in message and "chmod 600 %s" % loose in message
    message = one_error(cli(config, "restore", "--profile", "app", "--target", "never_made", "--identity", str(loose)))
    assert "permissions 0644 for %s are too open" % loose in message
    loose.chmod(0o600)
    cli(config, "verify", "--profile", "app", "--level", "archive", "--identity", str(loose), check=0)


def test_template_and_maintenance_databases_are_refused_as_targets(cli, settings, pg, age_key):
    config = settings()
    cli(config, "backup", "--profile", "app", check=0)
    for target, what in (("template1", "is a template database"), ("postgres", "is the maintenance database")):
        message = one_error(cli(config, "restore", "--profile", "app", "--target", target, "--no-create", "--clean",
                                "--identity", age_key[0]))
        assert "target database %s %s" % (target, what) in message and "allow_system_target" in message
    assert pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'kept'", db="template1").strip() == "0"
    # Asked for by name, a test-owned template takes it.
    template = "bad_input_template_%s" % uuid.uuid4().hex[:6]
    pg.psql("CREATE DATABASE %s IS_TEMPLATE true" % template)
    one_error(cli(config, "restore", "--profile", "app", "--target", template, "--no-create", "--identity", age_key[0]))
    cli(config, "restore", "--profile", "app", "--target", template, "--no-create", "--allow-system-target",
        "--identity", age_key[0], check=0)
    assert pg.psql("SELECT count(*) FROM public.kept", db=template).strip() == "100"
    pg.psql("ALTER DATABASE %s IS_TEMPLATE false" % template)
    pg.psql("DROP DATABASE %s" % template)


def test_the_restore_module_refuses_a_system_target_unless_allowed(module, cli, settings, backup_root, age_key):
    cli(settings(), "backup", "--profile", "app", check=0)
    args = dict(settings()["connection"], profile="app", backup_root=backup_root, db="template1", create=False,
                identity_file=age_key[0])
    refused = module("restore", args, check=True)
    assert refused.failed and "is a template database" in refused["msg"] and "allow_system_target" in refused["msg"]
    allowed = module("restore", dict(args, allow_system_target=True), check=True)
    assert not allowed.failed and allowed["restore"]["target"] == "template1", allowed.result
