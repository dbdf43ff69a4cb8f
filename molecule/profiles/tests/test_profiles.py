"""Several profiles on one host: table subsets, a removed profile, and a failing profile (wrong database)
that is notified without stopping the others or touching their backups."""

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))

from lifeboat_checks import (  # noqa: E402
    USER, backups, cron_entries, json_lines, lifeboat, row_counts, run_as_cron, samples, scrape,
)

RECEIVED = "/var/tmp/webhook-received.jsonl"


def received(host):
    f = host.file(RECEIVED)
    return [json.loads(line) for line in f.content_string.splitlines()] if f.exists else []


def test_removed_profile_lost_its_cron_entry(host):
    assert sorted(cron_entries(host)) == ["broken", "orders", "payments", "tickets"]
    assert "retired" not in host.file("/etc/cron.d/lifeboat").content_string


def test_peer_authentication_needs_no_passfile(host):
    assert not host.file("/etc/lifeboat/pgpass").exists
    config = host.file("/etc/lifeboat/lifeboat.yml").content_string
    assert "login_unix_socket: /var/run/postgresql" in config and "passfile" not in config
    assert "mode: none" in config
    assert lifeboat(host, "check-config", "--connect")["server_version"].startswith("15")


@pytest.fixture(scope="module")
def runs(host):
    """orders first; then every other cron entry at the same moment, as cron starts them.

    The test plays cron: the daemon is stopped first, and only what arrives at the receiver from here on counts,
    so an entry that fell due during the scenario (payments is @hourly) cannot add a run of its own.
    """
    stop_cron = ("kill $(cat /var/run/crond.pid) && rm /var/run/crond.pid && "
                 "for lock in /var/lib/lifeboat/locks/*.lock; do [ ! -e $lock ] || flock $lock true; done")
    assert host.run(stop_cron).rc == 0  # and wait out a run it started: each holds its profile's lock
    seen = len(received(host))
    entries = cron_entries(host)
    first = run_as_cron(host, entries["orders"][2])
    assert first.rc == 0, host.file("/var/log/lifeboat/orders.log").content_string
    orders_id = backups(host, "orders")[-1]
    listing = "find /var/backups/lifeboat/orders/%s -type f -exec sha256sum {} + | sort" % orders_id
    before = host.run(listing).stdout

    names = ["payments", "tickets", "broken"]
    script = " ".join(
        "( runuser -u %s -- env -i PATH=/usr/bin:/bin HOME=/var/lib/lifeboat LOGNAME=lifeboat SHELL=/bin/sh "
        "/bin/sh -c %s; echo $? > /var/tmp/rc.%s ) &" % (USER, shlex.quote(entries[name][2]), name) for name in names
    ) + " wait"
    assert host.run(script).rc == 0
    rcs = dict((name, int(host.file("/var/tmp/rc.%s" % name).content_string)) for name in names)
    return {"rcs": rcs, "orders_id": orders_id, "orders_listing": (listing, before), "received": received(host)[seen:]}


def test_failing_profile_fails_alone(host, runs):
    assert runs["rcs"]["broken"] != 0
    assert runs["rcs"]["payments"] == 0 and runs["rcs"]["tickets"] == 0
    log = json_lines(host.file("/var/log/lifeboat/broken.log").content_string)
    assert log[-1]["ok"] is False
    assert "no_such_database" in log[-1]["error"]
    assert backups(host, "broken") == []


def test_other_backups_are_intact(host, runs):
    listing, before = runs["orders_listing"]
    assert host.run(listing).stdout == before
    result = lifeboat(host, "verify", "--profile", "orders", "--id", runs["orders_id"], "--level", "archive")
    assert result["id"] == runs["orders_id"]


@pytest.mark.parametrize("profile, tables", [
    ("payments", ["public.payments"]),
    ("tickets", ["public.tickets"]),
    ("orders", ["public.orders", "public.users"]),
])
def test_profiles_hold_their_table_subsets(host, runs, profile, tables):
    newest = backups(host, profile)[-1]
    manifest = json.loads(host.file("/var/backups/lifeboat/%s/%s/manifest.json" % (profile, newest)).content_string)
    counts = dict(("%s.%s" % (t["schema"], t["name"]), t["rows"]) for t in manifest["tables"])
    assert sorted(counts) == tables
    assert counts == row_counts(host, "shop", tables)
    assert manifest["host"] == "db-molecule"


def test_subset_backup_restores_with_the_same_row_counts(host, runs):
    result = lifeboat(host, "verify", "--profile", "payments", "--level", "restore")
    assert result["level"] == "restore"


def test_failure_is_sent_to_the_webhook_without_secrets(host, runs):
    hooks = [r for r in runs["received"] if r["path"].startswith("/hook/")]
    assert len(hooks) == 1, hooks  # on_success is off: only the failure is sent
    body = json.loads(hooks[0]["body"])
    assert (body["profile"], body["host"], body["status"]) == ("broken", "db-molecule", "failure")
    assert "no_such_database" in body["error"]
    text = hooks[0]["body"]
    assert "secret-token" not in text and "@example.com" not in text


def test_dead_mans_switch_sees_start_success_and_failure(host, runs):
    pings = sorted(r["path"] for r in runs["received"] if r["path"].startswith("/ping/"))
    assert pings == ["/ping/broken/fail", "/ping/broken/start", "/ping/payments", "/ping/payments/start"]


def test_node_exporter_reads_the_metrics_inside_the_backup_root_through_the_group(host, runs):
    root = host.file("/var/backups/lifeboat")
    assert (root.user, root.group, root.mode) == (USER, "lifeboat-metrics", 0o710)  # search, no listing
    metrics = host.file("/var/backups/lifeboat/.metrics")
    assert (metrics.user, metrics.group, metrics.mode) == (USER, "lifeboat-metrics", 0o2750)
    assert host.file("/var/backups/lifeboat/orders").mode == 0o700
    status, body = scrape(host, 9100)
    assert status == "200" and samples(body, "node_textfile_scrape_error") == {"": 0.0}
    outcome = dict((labels.split('profile="')[1].split('"')[0], value)
                   for labels, value in samples(body, "lifeboat_backup_last_run_success").items())
    assert outcome == {"broken": 0, "orders": 1, "payments": 1, "tickets": 1}
    # The group reaches the metrics, not the backups; other users reach neither.
    assert host.run("runuser -u prometheus -- ls /var/backups/lifeboat").rc != 0
    assert host.run("runuser -u nobody -- ls /var/backups/lifeboat/.metrics").rc != 0
