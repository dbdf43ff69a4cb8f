"""The monitoring stack end to end: Debian's Prometheus scrapes node_exporter (lifeboat's textfiles) and
postgres_exporter (the role's custom queries) over TLS with bcrypt basic auth and loads the shipped rules; a failed
backup fires LifeboatBackupFailed, a good one clears it; no customer data or secret reaches any metric.

The exporters run as the prometheus user: the textfiles reach it through the directory's group only.
A cluster of its own, with pg_stat_statements preloaded (the session cluster does not preload it).
"""

import base64
import crypt
import grp
import json
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from scripts import pgcluster
from tests.conftest import REPO

ROLE_FILES = os.path.join(REPO, "roles", "monitoring", "files")
BINARIES = ("prometheus", "prometheus-node-exporter", "prometheus-postgres-exporter", "openssl", "setpriv")
USER, PASSWORD = "scraper", "scrape-password-for-tests"
MONITOR_PASSWORD = "Monitor-Login-Secret-4711"
# Customer data and secrets planted in rows, query literals and a password change: none may reach a metric.
CANARIES = ("zq.canary.customer@example.test", "LICK-7Q2X-99ZZ-CANARY", "Rotated-Canary-Password-0815", MONITOR_PASSWORD)

pytestmark = pytest.mark.skipif(any(shutil.which(b) is None for b in BINARIES),
                                reason="Prometheus packages missing: run scripts/bootstrap.sh test")


def _run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)
    assert proc.returncode == 0, "%s: %s %s" % (argv[0], proc.stdout, proc.stderr)
    return proc.stdout


def _private(path, text, owner):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    os.chown(path, owner.pw_uid, owner.pw_gid)


class Stack:
    def __init__(self, base):
        self.base = base
        self.procs = []
        self.context = None  # trusts the self-signed certificate once it exists

    def spawn(self, argv, user=None, env=None):
        prefix = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] if user else []
        log = open(os.path.join(self.base, os.path.basename(argv[0]) + ".log"), "w")
        proc = subprocess.Popen(prefix + argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def get(self, url, auth=True):
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode())
        context = self.context if url.startswith("https") else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()

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
        logs = "".join(open(os.path.join(self.base, name)).read()[-1500:] for name in os.listdir(self.base) if name.endswith(".log"))
        raise AssertionError("timed out waiting for %s\n%s" % (what, logs))


@pytest.fixture(scope="module")
def stack():
    prometheus_user = pwd.getpwnam("prometheus")
    base = tempfile.mkdtemp(prefix="lifeboat-monitoring-", dir="/var/tmp")
    os.chmod(base, 0o755)
    stack = Stack(base)
    cluster = pgcluster.create(os.path.join(base, "pg"))
    try:
        cluster.stop()
        cluster.info["options"] += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        cluster.start()
        cluster.psql("CREATE EXTENSION pg_stat_statements")
        cluster.psql("CREATE ROLE lifeboat_monitor LOGIN PASSWORD '%s' IN ROLE pg_monitor" % MONITOR_PASSWORD)
        stack.cluster = cluster

        tls = os.path.join(base, "tls")
        os.mkdir(tls, 0o755)
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
              "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
              "-keyout", os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem")])
        os.chown(os.path.join(tls, "key.pem"), prometheus_user.pw_uid, prometheus_user.pw_gid)
        os.chmod(os.path.join(tls, "key.pem"), 0o600)
        web = os.path.join(base, "web.yml")
        _private(web, json.dumps({
            "tls_server_config": {"cert_file": os.path.join(tls, "cert.pem"), "key_file": os.path.join(tls, "key.pem")},
            "basic_auth_users": {USER: crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))},
        }), prometheus_user)
        passfile = os.path.join(base, "monitor.pass")
        _private(passfile, MONITOR_PASSWORD + "\n", prometheus_user)

        # The agent's metrics directory as the role leaves it: setgid, group of the exporter, nothing for others.
        stack.metrics = os.path.join(base, "metrics")
        os.mkdir(stack.metrics)
        os.chown(stack.metrics, 0, grp.getgrnam("prometheus").gr_gid)
        os.chmod(stack.metrics, 0o2750)

        stack.node = "127.0.0.1:%d" % pgcluster.free_port()
        stack.spawn(["prometheus-node-exporter", "--web.listen-address=" + stack.node, "--web.config.file=" + web,
                     "--collector.disable-defaults", "--collector.textfile", "--collector.filesystem",
                     "--collector.textfile.directory=" + stack.metrics], user="prometheus")
        stack.postgres = "127.0.0.1:%d" % pgcluster.free_port()
        env = {"PATH": os.environ["PATH"], "DATA_SOURCE_URI": "127.0.0.1:%d/postgres?sslmode=disable" % cluster.port,
               "DATA_SOURCE_USER": "lifeboat_monitor", "DATA_SOURCE_PASS_FILE": passfile}
        stack.spawn(["prometheus-postgres-exporter", "--web.listen-address=" + stack.postgres, "--web.config.file=" + web,
                     "--extend.query-path=" + os.path.join(ROLE_FILES, "postgres_queries.yml")], user="prometheus", env=env)

        prom_port = pgcluster.free_port()
        stack.prometheus = "http://127.0.0.1:%d" % prom_port
        scrape = dict(scheme="https", tls_config={"ca_file": os.path.join(tls, "cert.pem")},
                      basic_auth={"username": USER, "password": PASSWORD})
        config = os.path.join(base, "prometheus.yml")
        _private(config, json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.join(ROLE_FILES, "lifeboat.rules.yml")],
            "scrape_configs": [dict(scrape, job_name="lifeboat_node", static_configs=[{"targets": [stack.node]}]),
                               dict(scrape, job_name="lifeboat_postgres", static_configs=[{"targets": [stack.postgres]}])],
        }), pwd.getpwnam("root"))
        stack.spawn(["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(base, "tsdb"),
                     "--web.listen-address=127.0.0.1:%d" % prom_port])
        stack.context = ssl.create_default_context(cafile=os.path.join(tls, "cert.pem"))
        stack.wait("both targets up", lambda: sorted(t["health"] for t in stack.api("/api/v1/targets")["activeTargets"]) == ["up", "up"])
        yield stack
    finally:
        for proc in stack.procs:
            proc.terminate()
        for proc in stack.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
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
