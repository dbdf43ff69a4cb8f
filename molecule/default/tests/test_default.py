"""The agent on a database host: files, modes, owners, cron entries, log rotation, and a cron entry
run for real: a verified backup with a manifest that restores to the same row counts."""

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))

from lifeboat_checks import (  # noqa: E402
    CRON_ENV, USER, backups, cron_entries, json_lines, lifeboat, psql, row_counts, run_as_cron,
)

PASSWORD = "molecule-only:pass\\word"  # noqa: S105 (the scenario's own test login)
CATCH_ALL = "*:*:*:*:molecule-only\\:pass\\\\word"  # the role's passfile line, colon and backslash escaped
TABLES = ["public.users", "public.orders", "public.payments", "public.tickets"]


@pytest.mark.parametrize("path, kind, owner, group, mode", [
    ("/etc/lifeboat", "directory", USER, USER, 0o750),  # the backup user's rotations replace files there
    ("/etc/lifeboat/lifeboat.yml", "file", USER, USER, 0o600),
    ("/etc/lifeboat/pgpass", "file", USER, USER, 0o600),
    ("/var/backups/lifeboat", "directory", USER, USER, 0o700),
    ("/var/log/lifeboat", "directory", USER, USER, 0o700),
    ("/var/log/lifeboat/payments.log", "file", USER, USER, 0o600),
    ("/var/lib/lifeboat/locks", "directory", USER, USER, 0o700),
    ("/etc/lifeboat/drill-identity.txt", "file", USER, USER, 0o600),
    ("/var/log/lifeboat/full.drill.log", "file", USER, USER, 0o600),
    ("/usr/lib/lifeboat/bin/lifeboat", "file", "root", "root", 0o755),
    ("/usr/lib/lifeboat/plugins/module_utils/_actions", "directory", "root", "root", 0o755),  # the backup user imports it
    ("/usr/lib/lifeboat/plugins/module_utils/_actions/backup.py", "file", "root", "root", 0o644),
    ("/etc/cron.d/lifeboat", "file", "root", "root", 0o644),
    ("/etc/logrotate.d/lifeboat", "file", "root", "root", 0o644),
])
def test_files_modes_and_owners(host, path, kind, owner, group, mode):
    f = host.file(path)
    assert f.exists, path
    assert (f.is_directory if kind == "directory" else f.is_file), path
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_backup_user_is_a_system_user_without_login(host):
    user = host.user(USER)
    assert user.exists and user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"


def test_command_on_path_runs_the_installed_engine(host):
    assert host.file("/usr/local/bin/lifeboat").linked_to == "/usr/lib/lifeboat/bin/lifeboat"
    result = lifeboat(host, "check-config", "--connect")
    assert result["profiles"] == ["full", "orders", "payments", "tickets"]
    assert result["pg_dump_major"] == 15


def test_engine_bytecode_is_compiled_for_the_backup_user(host):
    """The backup user cannot write __pycache__ there: without bytecode every run would compile the engine."""
    engine = "/usr/lib/lifeboat/plugins/module_utils"
    out = host.check_output("runuser -u %s -- python3 -m compileall %s" % (USER, engine))
    assert "Listing" in out and "Compiling" not in out
    assert host.file(engine + "/__pycache__").user == "root"


def test_configuration_holds_no_password(host):
    config = host.file("/etc/lifeboat/lifeboat.yml").content_string
    assert PASSWORD not in config
    assert "passfile: /etc/lifeboat/pgpass" in config
    assert host.file("/etc/lifeboat/pgpass").content_string.splitlines()[-1] == CATCH_ALL


def test_one_cron_entry_per_profile(host):
    entries = cron_entries(host)
    assert sorted(entries) == ["full", "orders", "payments", "tickets"]
    assert entries["payments"][0] == "15 * * * *"
    assert entries["tickets"][0] == "@daily"
    assert entries["full"][0] == "0 2 * * *"
    for name, (_schedule, user, command) in entries.items():
        assert user == USER
        assert command == (
            "/usr/bin/flock -n /var/lib/lifeboat/locks/%s.lock /usr/bin/nice -n 10 /usr/bin/ionice -c3 "
            "/usr/local/bin/lifeboat --json run --profile %s >> /var/log/lifeboat/%s.log 2>&1" % (name, name, name)
        )


def test_one_drill_entry_per_drilled_profile_with_a_lock_of_its_own(host):
    assert cron_entries(host, "drill") == {"full": ("0 4 1 */3 *", USER, (
        "/usr/bin/flock -n /var/lib/lifeboat/locks/full.drill.lock /usr/bin/nice -n 10 /usr/bin/ionice -c3 "
        "/usr/local/bin/lifeboat --json drill --profile full --identity /etc/lifeboat/drill-identity.txt "
        ">> /var/log/lifeboat/full.drill.log 2>&1"))}


def test_cron_is_running(host):
    assert host.run("pgrep -x cron").rc == 0


def test_logrotate_accepts_the_policy(host):
    result = host.run("logrotate -d /etc/logrotate.d/lifeboat")
    assert result.rc == 0, result.stderr
    assert "/var/log/lifeboat/*.log" in result.stderr
    policy = host.file("/etc/logrotate.d/lifeboat").content_string
    for directive in ("daily", "compress", "rotate 30", "create 0600 lifeboat lifeboat"):
        assert directive in policy


def test_cron_entry_takes_a_verified_backup_that_restores(host):
    command = cron_entries(host)["full"][2]
    before = set(backups(host, "full"))
    result = run_as_cron(host, command)
    assert result.rc == 0, host.file("/var/log/lifeboat/full.log").content_string

    log = json_lines(host.file("/var/log/lifeboat/full.log").content_string)
    assert log[-1]["ok"] is True and log[-1]["command"] == "run"
    backup = log[-1]["backup"]
    assert backup["verification"]["level"] == "archive"
    assert set(backups(host, "full")) - before == {backup["id"]}

    path = "/var/backups/lifeboat/full/%s" % backup["id"]
    manifest = json.loads(host.file(path + "/manifest.json").content_string)
    assert manifest["profile"] == "full" and manifest["database"] == "shop"
    artifacts = host.run("find %s -type f -printf '%%u %%m %%f\\n'" % path).stdout.split("\n")
    assert all(line.startswith("lifeboat 600 ") for line in artifacts if line), artifacts
    assert host.file(path).mode == 0o700

    listed = lifeboat(host, "list", "--profile", "full")
    assert listed["full"]["health"]["newest_verified_id"] == backup["id"]

    # The restore side holds the identity; the host only ever had the public key.
    # side_effect rotated the identity (overlap, then finish): new backups open with the new one only.
    identity = open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "age-identity-next.txt")).read()
    host.run("install -m 0600 -o lifeboat -g lifeboat /dev/null /var/tmp/identity.txt")
    host.run("printf '%%s' %s > /var/tmp/identity.txt" % shlex.quote(identity))
    try:
        psql(host, "postgres", "DROP DATABASE IF EXISTS shop_restored")
        restored = lifeboat(host, "restore", "--profile", "full", "--id", backup["id"], "--target", "shop_restored",
                            "--no-owner", "--identity", "/var/tmp/identity.txt")
        assert restored["target"] == "shop_restored"
    finally:
        host.run("rm -f /var/tmp/identity.txt")
    source = row_counts(host, "shop", TABLES)
    assert row_counts(host, "shop_restored", TABLES) == source
    manifest_rows = dict(("%s.%s" % (t["schema"], t["name"]), t["rows"]) for t in manifest["tables"])
    assert dict((t, manifest_rows[t]) for t in TABLES) == source


def test_a_run_never_overlaps_the_previous_one(host):
    """flock -n: while a run holds the profile's lock, the next cron run exits at once and writes nothing."""
    command = cron_entries(host)["tickets"][2]
    lock = "/var/lib/lifeboat/locks/tickets.lock"
    before = backups(host, "tickets")
    host.run("rm -f /var/tmp/holder.pid")
    holder = host.run("setsid -f runuser -u lifeboat -- /bin/sh -c %s"
                      % shlex.quote("exec 9>>%s; flock 9; echo $$ > /var/tmp/holder.pid; exec sleep 120" % lock))
    assert holder.rc == 0, holder.stderr
    assert host.run("for i in $(seq 50); do [ -s /var/tmp/holder.pid ] && exit 0; sleep 0.2; done; exit 1").rc == 0
    try:
        result = run_as_cron(host, command)
        assert result.rc == 1
        assert backups(host, "tickets") == before
    finally:
        host.run("kill $(cat /var/tmp/holder.pid)")


def test_drill_entry_plans_the_newest_backup_and_its_lock_keeps_a_second_one_out(host):
    """Planned (--dry-run), not run: the scenario's backup login may not create the amcheck extension a real drill
    uses; tests/integration/test_drill.py runs real drills from a bucket."""
    command = cron_entries(host, "drill")["full"][2].replace(" --identity", " --dry-run --identity")
    result = run_as_cron(host, command)
    assert result.rc == 0, host.file("/var/log/lifeboat/full.drill.log").content_string
    (plan,) = json_lines(host.file("/var/log/lifeboat/full.drill.log").content_string)[-1]["drills"]
    assert plan["check_mode"] is True and plan["backup_id"] == sorted(backups(host, "full"))[-1]

    lines = len(host.file("/var/log/lifeboat/full.drill.log").content_string.splitlines())
    held = host.run("runuser -u %s -- flock -n /var/lib/lifeboat/locks/full.drill.lock %s /bin/sh -c %s"
                    % (USER, CRON_ENV, shlex.quote(command)))
    assert held.rc == 1  # flock -n: the drill that holds the lock is the only one
    assert len(host.file("/var/log/lifeboat/full.drill.log").content_string.splitlines()) == lines


def test_age_rotation_left_the_new_recipient_alone_and_the_old_one_retired(host):
    """side_effect ran rotate_credentials' age step, overlap then finish, with a new identity kept on the controller;
    each phase proved its fresh backup opens with it. test_cron_entry_takes_a_verified_backup_that_restores restores
    with it (its run also prunes the day's earlier backups, the overlap's proof among them: keep_daily)."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    assert os.stat(os.path.join(ephemeral, "age-identity-next.txt")).st_mode & 0o777 == 0o600
    new_identity = open(os.path.join(ephemeral, "age-identity-next.txt")).read()
    old_recipient = open(os.path.join(ephemeral, "age-recipient.txt")).read().strip()
    new_recipient = [line for line in new_identity.splitlines() if line.startswith("# public key: ")][0].split(": ")[1]
    assert "AGE-SECRET-KEY" not in host.file("/etc/lifeboat/lifeboat.yml").content_string  # never on the host
    config = host.file("/etc/lifeboat/lifeboat.yml").content_string
    assert new_recipient in config and old_recipient not in config
    report = lifeboat(host, "identities")
    states = dict((r["recipient"], (r["current"], r["needed_by"])) for r in report["recipients"])
    assert states[new_recipient] == (True, [])
    assert states.get(old_recipient, (False, []))[0] is False  # retired, or gone with the backups it opened
    newest = sorted(backups(host, "full"))[-1]
    manifest = json.loads(host.file("/var/backups/lifeboat/full/%s/manifest.json" % newest).content_string)
    assert set(manifest["artifacts"][0]["recipients"]) == {new_recipient}


def test_a_site_run_after_a_rotation_kept_the_rotated_password(host):
    """side_effect rotated the backup user's password from the host, then applied the agent role with the inventory's
    old password: the role rewrote its catch-all line only, and the login's rotated line stays first (libpq takes it)."""
    lines = host.file("/etc/lifeboat/pgpass").content_string.splitlines()
    assert lines[0].startswith("*:*:*:lifeboat_backup:") and lines[1:] == [CATCH_ALL]
    assert lifeboat(host, "check-config", "--connect")["pg_dump_major"] == 15  # the old password is refused by now


def test_the_backup_user_rotates_its_own_password_from_the_host_and_backups_go_on(host):
    """The cron line docs/rotation.md gives a host without a controller: in_place, the passfile replaced in one
    rename inside /etc/lifeboat. Last of this file: the scenario's password is a new one afterwards."""
    before = host.file("/etc/lifeboat/pgpass").content_string
    rotated = lifeboat(host, "rotate-password", "--force")
    assert rotated["rotated"] is True and rotated["consumers"] == ["/etc/lifeboat/pgpass"]
    passfile = host.file("/etc/lifeboat/pgpass")
    lines = passfile.content_string.splitlines()
    # The login's own entry comes first (libpq takes the first match); the role's catch-all line stays for others.
    assert lines[0].startswith("*:*:*:lifeboat_backup:") and lines[0] != before.splitlines()[0]
    assert lines[1:] == before.splitlines()[1:] == [CATCH_ALL]
    assert (passfile.user, passfile.group, passfile.mode) == (USER, USER, 0o600)
    assert lifeboat(host, "check-config", "--connect")["pg_dump_major"] == 15
    result = run_as_cron(host, cron_entries(host)["tickets"][2])
    assert result.rc == 0, host.file("/var/log/lifeboat/tickets.log").content_string
