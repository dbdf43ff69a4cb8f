"""The monitoring stack end to end: Debian's Prometheus scrapes node_exporter (lifeboat's textfiles) and
postgres_exporter (the role's custom queries) over TLS with bcrypt basic auth and loads the shipped rules; a failed
backup fires LifeboatBackupFailed, a good one clears it; no customer data or secret reaches any metric.

The exporters run as the prometheus user: the textfiles reach it through the directory's group only.
A cluster of its own, with pg_stat_statements preloaded (the session cluster does not preload it).
"""

import grp
import json
import os
import pwd
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from scripts import monitoring_stack, pgcluster
from scripts.monitoring_stack import ROLE_FILES

BINARIES = ("prometheus",) + monitoring_stack.EXPORTERS
USER, PASSWORD = "scraper", "scrape-password-for-tests"
MONITOR_PASSWORD = "Monitor-Login-Secret-4711"
# Customer data and secrets planted in rows, query literals and a password change: none may reach a metric.
CANARIES = ("zq.canary.customer@example.test", "LICK-7Q2X-99ZZ-CANARY", "Rotated-Canary-Password-0815", MONITOR_PASSWORD)

pytestmark = pytest.mark.skipif(any(shutil.which(b) is None for b in BINARIES),
                                reason="Prometheus packages missing: run scripts/bootstrap.sh test")


class Stack(monitoring_stack.Exporters):
    """The exporters (scripts/monitoring_stack.py) and a Prometheus scraping them."""

    def api(self, path, **params):
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.prometheus + path + query, timeout=10) as response:
            return json.loads(response.read().decode())["data"]

    def wait(self, what, check, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = check()
                if value:
                    return value
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise AssertionError("timed out waiting for %s\n%s" % (what, self.logs()))


@pytest.fixture(scope="module")
def stack():
    base = tempfile.mkdtemp(prefix="lifeboat-monitoring-", dir="/var/tmp")
    os.chmod(base, 0o755)
    stack = Stack(base)
    cluster = monitoring_stack.stats_cluster(os.path.join(base, "pg"), {"pg_stat_statements.track": "all"})
    try:
        cluster.psql("CREATE ROLE lifeboat_monitor LOGIN PASSWORD '%s' IN ROLE pg_monitor" % MONITOR_PASSWORD)
        stack.cluster = cluster
        stack.web_config(USER, PASSWORD)
        passfile = os.path.join(base, "monitor.pass")
        monitoring_stack.private(passfile, MONITOR_PASSWORD + "\n", pwd.getpwnam(monitoring_stack.USER))

        # The agent's metrics directory as the role leaves it: setgid, group of the exporter, nothing for others.
        stack.metrics = os.path.join(base, "metrics")
        os.mkdir(stack.metrics)
        os.chown(stack.metrics, 0, grp.getgrnam("prometheus").gr_gid)
        os.chmod(stack.metrics, 0o2750)

        stack.node = stack.node_exporter(stack.metrics, collectors=("textfile", "filesystem"))
        stack.postgres = stack.postgres_exporter(cluster, "lifeboat_monitor", passfile, sslmode="disable")

        prom_port = pgcluster.free_port()
        stack.prometheus = "http://127.0.0.1:%d" % prom_port
        scrape = dict(scheme="https", tls_config={"ca_file": stack.cert},
                      basic_auth={"username": USER, "password": PASSWORD})
        config = os.path.join(base, "prometheus.yml")
        monitoring_stack.private(config, json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.join(ROLE_FILES, "lifeboat.rules.yml")],
            "scrape_configs": [dict(scrape, job_name="lifeboat_node", static_configs=[{"targets": [stack.node]}]),
                               dict(scrape, job_name="lifeboat_postgres", static_configs=[{"targets": [stack.postgres]}])],
        }), pwd.getpwnam("root"))
        stack.spawn(["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(base, "tsdb"),
                     "--web.listen-address=127.0.0.1:%d" % prom_port])
        stack.wait("both targets up", lambda: sorted(t["health"] for t in stack.api("/api/v1/targets")["activeTargets"]) == ["up", "up"])
        yield stack
    finally:
        stack.stop()
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_endpoints_refuse_unauthenticated_and_plain_http(stack):
    for address in (stack.node, stack.postgres):
        with pytest.raises(urllib.error.HTTPError) as refused:
            stack.get("https://%s/metrics" % address, auth=False)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as plain:  # Go answers 400 to HTTP on a TLS port
            stack.get("http://%s/metrics" % address)
        assert plain.value.code == 400
        status, body = stack.get("https://%s/metrics" % address)
        assert status == 200 and "# TYPE" in body


def _alerts(stack, name):
    return [a for a in stack.api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]


def test_failed_backup_fires_the_alert_and_a_good_backup_clears_it(stack, cli, tmp_path):
    cluster = stack.cluster
    config = {"connection": cluster.connection(), "backup_root": str(tmp_path / "backups"), "log_dir": str(tmp_path / "logs"),
              "metrics_dir": stack.metrics, "encryption": {"mode": "none"},
              "profiles": {"orders": {"db": "orders_db", "min_tables": 0}}}
    failed = cli(config, "backup", "--profile", "orders")
    assert failed.returncode != 0
    textfile = os.path.join(stack.metrics, "lifeboat_orders.prom")
    assert os.stat(textfile).st_mode & 0o777 == 0o640 and os.stat(textfile).st_gid == grp.getgrnam("prometheus").gr_gid
    firing = stack.wait("LifeboatBackupFailed firing",
                        lambda: [a for a in _alerts(stack, "LifeboatBackupFailed") if a["state"] == "firing"])
    assert firing[0]["labels"]["profile"] == "orders" and firing[0]["labels"]["job"] == "lifeboat_node"

    cluster.psql("CREATE DATABASE orders_db")
    cluster.psql("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)", db="orders_db")
    cli(config, "backup", "--profile", "orders", check=0)
    stack.wait("LifeboatBackupFailed cleared", lambda: _alerts(stack, "LifeboatBackupFailed") == [])
    query = 'lifeboat_backup_last_run_success{profile="orders"}'
    stack.wait("the success recorded", lambda: stack.api("/api/v1/query", query=query)["result"][0]["value"][1] == "1")


def test_no_customer_data_or_secret_in_any_metric(stack):
    cluster = stack.cluster
    cluster.psql("CREATE DATABASE privacy_db")
    cluster.psql("CREATE TABLE customers (email text, license_key text); "
                 "INSERT INTO customers VALUES ('%s', '%s')" % CANARIES[:2], db="privacy_db")
    cluster.psql("SELECT * FROM customers WHERE email = '%s' OR license_key = '%s'" % CANARIES[:2], db="privacy_db")
    cluster.psql("CREATE ROLE canary_login LOGIN; ALTER ROLE canary_login PASSWORD '%s'" % CANARIES[2])
    # The server did record the secret in a statement's text: the exporter could leak it if it read the text.
    assert cluster.psql("SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%%%s%%'" % CANARIES[2]).strip() != "0"

    def statements():
        scraped = stack.get("https://%s/metrics" % stack.postgres)[1]
        return scraped if "lifeboat_pg_statement_top_calls{" in scraped else None

    body = stack.wait("per-statement metrics", statements)
    bodies = [body, stack.get("https://%s/metrics" % stack.node)[1]]
    bodies += [open(os.path.join(stack.metrics, name)).read() for name in os.listdir(stack.metrics)]
    for canary in CANARIES:
        assert [b for b in bodies if canary.lower() in b.lower()] == [], canary
    top = [line for line in body.splitlines() if line.startswith("lifeboat_pg_statement_top_")]
    assert top
    for line in top:  # labels: database and a numeric queryid (and the exporter's server address), nothing else
        labels = dict(pair.split("=", 1) for pair in line[line.index("{") + 1:line.rindex("}")].split(","))
        assert sorted(labels) == ["datname", "queryid", "server"] and labels["queryid"].strip('"').lstrip("-").isdigit(), line
    assert "lifeboat_pg_statements_calls{" in body and "pg_settings_max_connections" in body


def _dashboard_queries():
    with open(os.path.join(ROLE_FILES, "lifeboat-dashboard.json"), encoding="utf-8") as handle:
        dashboard = json.load(handle)
    queries = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [("variable " + v["name"], v["query"].replace("label_values(", "group by (instance) (").replace(", instance)", ")"))
                for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries


def test_every_dashboard_query_runs(stack):
    """Grafana's own variables replaced as Grafana would; Prometheus rejects any query it cannot parse or run."""
    queries = _dashboard_queries()
    assert len(queries) >= 20
    errors = []
    for title, expr in queries:
        promql = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
        try:
            stack.api("/api/v1/query", query=promql)
        except urllib.error.HTTPError as exc:
            errors.append("%s: %s" % (title, exc.read().decode()[:300]))
    assert errors == []
    # Panels on both exporters show data, not only parse.
    for metric in ("node_filesystem_size_bytes", "lifeboat_pg_statements_calls", "pg_settings_max_connections"):
        assert stack.api("/api/v1/query", query=metric)["result"], metric
