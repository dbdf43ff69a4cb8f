"""The monitoring role on the agent's host, as the site playbook installs it: both exporters behind TLS and bcrypt
basic auth, a backup's metrics and the database's statement statistics scraped through them, secrets in 0600
files only."""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))

from lifeboat_checks import cron_entries, psql, run_as_cron, samples, scrape  # noqa: E402

MONITOR_PASSWORD = "molecule-only:monitor\\password"  # noqa: S105 (the scenario's own test login)
NODE, POSTGRES = 9100, 9187
CONFIG = "/etc/lifeboat-monitoring"


@pytest.mark.parametrize("port", [NODE, POSTGRES])
def test_a_scrape_without_the_password_gets_401(host, port):
    assert scrape(host, port, password=None)[0] == "401"
    assert scrape(host, port, password="not-the-password")[0] == "401"  # noqa: S106


@pytest.mark.parametrize("port", [NODE, POSTGRES])
def test_plain_http_is_refused(host, port):
    status, body = scrape(host, port, scheme="http")
    assert status == "400" and "# TYPE" not in body


def test_node_exporter_serves_the_backup_metrics_through_the_group(host):
    result = run_as_cron(host, cron_entries(host)["tickets"][2])
    assert result.rc == 0, host.file("/var/log/lifeboat/tickets.log").content_string
    status, body = scrape(host, NODE)
    assert status == "200"
    outcome = [value for labels, value in samples(body, "lifeboat_backup_last_run_success").items() if 'profile="tickets"' in labels]
    assert outcome == [1]
    assert any('profile="tickets"' in labels for labels in samples(body, "lifeboat_backup_last_success_timestamp_seconds"))
    assert samples(body, "node_textfile_scrape_error") == {"": 0.0}
    # Only the exporter's user reads them, through the group; other users do not.
    assert host.file("/var/lib/lifeboat/metrics/lifeboat_tickets.prom").mode == 0o640
    assert host.run("runuser -u nobody -- cat /var/lib/lifeboat/metrics/lifeboat_tickets.prom").rc != 0


def test_postgres_exporter_logs_in_and_exports_statements_by_queryid_only(host):
    psql(host, "shop", "SELECT count(*) FROM payments WHERE email = 'molecule-planted@example.com'")
    status, body = scrape(host, POSTGRES)
    assert status == "200"
    assert samples(body, "pg_up") == {"": 1.0}
    assert samples(body, "lifeboat_pg_statements_calls"), "the role's custom queries are not loaded"
    top = samples(body, "lifeboat_pg_statement_top_calls")
    assert top and all(re.search(r'queryid="-?\d+"', labels) for labels in top)
    assert "molecule-planted" not in body and 'query="' not in body


def test_the_roles_restart_loaded_pg_stat_statements(host):
    assert "pg_stat_statements" in psql(host, "postgres", "SHOW shared_preload_libraries")


@pytest.mark.parametrize("path, owner, group, mode", [
    (CONFIG, "root", "prometheus", 0o750),
    (CONFIG + "/web.yml", "root", "prometheus", 0o640),
    (CONFIG + "/tls.key", "prometheus", "prometheus", 0o600),
    (CONFIG + "/postgres-exporter.pass", "prometheus", "prometheus", 0o600),
    ("/var/lib/lifeboat/metrics", "lifeboat", "lifeboat-metrics", 0o2750),
    (CONFIG + "/lifeboat.rules.yml", "root", "root", 0o644),
])
def test_monitoring_files_modes_and_owners(host, path, owner, group, mode):
    f = host.file(path)
    assert f.exists, path
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_the_monitor_password_is_in_its_file_only(host):
    assert host.file(CONFIG + "/postgres-exporter.pass").content_string.strip() == MONITOR_PASSWORD
    # The pattern comes from the file: in grep's argv it would find itself.
    found = host.run("grep -l -F -f %s/postgres-exporter.pass /proc/[0-9]*/cmdline /proc/[0-9]*/environ "
                     "/etc/default/prometheus-* %s/web.yml 2>/dev/null" % (CONFIG, CONFIG))
    assert found.stdout.strip() == ""
    assert "lifeboat-metrics" in host.check_output("id -nG prometheus").split()
