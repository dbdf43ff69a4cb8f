"""Debian's Prometheus exporters as the monitoring role runs them, for tests and benchmarks.

Both exporters run as the prometheus user (setpriv), behind the role's web configuration (TLS with a self-signed
certificate, bcrypt basic auth); postgres_exporter logs in as a pg_monitor login whose password is in a 0600 file
and reads the role's custom queries. The cluster is one of its own with pg_stat_statements preloaded (the session
and bench clusters do not preload it). Used by tests/integration/test_monitoring.py and scripts/bench_monitoring.py.
"""

import base64
import crypt
import json
import os
import pwd
import shutil
import ssl
import subprocess
import time
import urllib.request

from scripts import pgcluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLE_FILES = os.path.join(REPO, "roles", "monitoring", "files")
QUERIES = os.path.join(ROLE_FILES, "postgres_queries.yml")
EXPORTERS = ("prometheus-node-exporter", "prometheus-postgres-exporter", "openssl", "setpriv")
USER = "prometheus"  # Debian's packages run both exporters as this user


def missing(binaries=EXPORTERS):
    return [name for name in binaries if shutil.which(name) is None]


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError("%s: %s %s" % (argv[0], proc.stdout, proc.stderr))
    return proc.stdout


def private(path, text, owner):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def stats_cluster(base, settings=None, **create):
    """A cluster of its own (scripts/pgcluster.py) with pg_stat_statements preloaded and created in postgres."""
    cluster = pgcluster.create(base, **create)
    try:
        cluster.stop()
        options = dict({"shared_preload_libraries": "pg_stat_statements"}, **(settings or {}))
        cluster.info["options"] += "".join(" -c %s=%s" % item for item in sorted(options.items()))
        cluster.start()
        cluster.psql("CREATE EXTENSION pg_stat_statements")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


class Exporters:
    """The exporters' processes, their web configuration and a client for their endpoints; ``stop()`` ends them."""

    def __init__(self, base):
        self.base = base  # world-readable (0755): the exporters read their files in it as the prometheus user
        self.procs = []
        self.context = None  # trusts the self-signed certificate once it exists
        self.auth = None
        self.web = self.cert = None

    def web_config(self, user, password):
        """TLS (self-signed, EC P-256, for 127.0.0.1) and one bcrypt (cost 10) basic-auth user, as the role writes them."""
        owner = pwd.getpwnam(USER)
        tls = os.path.join(self.base, "tls")
        os.mkdir(tls, 0o755)
        self.cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", self.cert])
        os.chown(key, owner.pw_uid, owner.pw_gid)
        os.chmod(key, 0o600)
        self.web = os.path.join(self.base, "web.yml")
        private(self.web, json.dumps({
            "tls_server_config": {"cert_file": self.cert, "key_file": key},
            "basic_auth_users": {user: crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))},
        }), owner)
        self.context = ssl.create_default_context(cafile=self.cert)
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        return self.web

    def spawn(self, argv, user=None, env=None, name=None):
        prefix = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] if user else []
        log = open(os.path.join(self.base, (name or os.path.basename(argv[0])) + ".log"), "w")
        proc = subprocess.Popen(prefix + argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    def node_exporter(self, metrics_dir, collectors=None, name=None):
        """Listening address. ``collectors`` None: Debian's default collectors, as the role runs it; else only those."""
        address = "127.0.0.1:%d" % pgcluster.free_port()
        argv = ["prometheus-node-exporter", "--web.listen-address=" + address, "--web.config.file=" + self.web]
        if collectors is not None:
            argv += ["--collector.disable-defaults"] + ["--collector." + c for c in collectors]
        self.spawn(argv + ["--collector.textfile.directory=" + metrics_dir], user=USER, name=name)
        return address

    def postgres_exporter(self, cluster, login, passfile, queries=QUERIES, sslmode="disable", name=None):
        """Listening address. ``queries`` None: without the role's custom queries (the exporter's own metrics only).

        ``sslmode``: the throwaway cluster has no TLS. Debian's exporter (0.11, lib/pq) knows only disable, require,
        verify-ca and verify-full: with ``prefer`` every collector fails and pg_up is 0.
        """
        address = "127.0.0.1:%d" % pgcluster.free_port()
        env = {"PATH": os.environ["PATH"], "DATA_SOURCE_URI": "127.0.0.1:%d/postgres?sslmode=%s" % (cluster.port, sslmode),
               "DATA_SOURCE_USER": login, "DATA_SOURCE_PASS_FILE": passfile}
        argv = ["prometheus-postgres-exporter", "--web.listen-address=" + address, "--web.config.file=" + self.web]
        self.spawn(argv + (["--extend.query-path=" + queries] if queries else []), user=USER, env=env, name=name)
        return address

    def get(self, url, auth=True, timeout=10):
        """(status, body); a new connection each time. HTTP errors raise urllib.error.HTTPError."""
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", self.auth)
        context = self.context if url.startswith("https") else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read().decode()

    def logs(self, tail=1500):
        return "".join(open(os.path.join(self.base, name)).read()[-tail:] for name in sorted(os.listdir(self.base))
                       if name.endswith(".log"))

    def wait_up(self, address, timeout=30):
        """Until https://address/metrics answers 200 (the exporter has started listening)."""
        deadline = time.time() + timeout
        while True:
            try:
                if self.get("https://%s/metrics" % address)[0] == 200:
                    return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("exporter on %s did not answer within %d s\n%s" % (address, timeout, self.logs()))
                time.sleep(0.2)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
