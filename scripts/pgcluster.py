"""A throwaway PostgreSQL cluster for tests, the demo and benchmarks.

``initdb`` into a fresh directory (as the postgres OS user when we are root:
the server refuses to run as root), start it on a free loopback port with its
socket inside that directory, stop and delete it at the end. Password
authentication (scram) on TCP, trust on the private socket.

    python3 scripts/pgcluster.py start --dir /tmp/x [--port N] [--fast]
    python3 scripts/pgcluster.py stop --dir /tmp/x
"""

import argparse
import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SERVER_USER = "postgres"


def bin_dir(major=None):
    """Server binaries: Debian's /usr/lib/postgresql/<major>/bin, newest by default."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if major:
        found = [p for p in found if p.split("/")[4] == str(major)]
    if not found:
        raise SystemExit("PostgreSQL server binaries not found; run scripts/bootstrap.sh (apt install postgresql-15)")
    return os.path.dirname(found[-1])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--"] + argv
    return argv


class Cluster:
    """A running throwaway cluster; ``info`` holds what clients need to connect."""

    def __init__(self, base, info):
        self.base = base
        self.info = info

    @property
    def port(self):
        return self.info["port"]

    @property
    def password(self):
        return self.info["password"]

    @property
    def socket_dir(self):
        return self.info["socket_dir"]

    def connection(self, **overrides):
        """Connection settings in the engine's option names (TCP, password)."""
        settings = {
            "login_host": "127.0.0.1",
            "login_port": self.port,
            "login_user": "postgres",
            "login_password": self.password,
        }
        settings.update(overrides)
        return settings

    def dsn(self, db="postgres"):
        return "host=127.0.0.1 port=%d user=postgres password=%s dbname=%s" % (self.port, self.password, db)

    def psql(self, sql, db="postgres", check=True):
        """Run SQL through the private socket (trust), return stdout."""
        proc = subprocess.run(
            [os.path.join(self.info["bin_dir"], "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
            capture_output=True, text=True, check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError("psql failed: %s" % proc.stderr.strip())
        return proc.stdout

    def stop(self, mode="fast"):
        subprocess.run(
            _as_server_user([os.path.join(self.info["bin_dir"], "pg_ctl"), "-D", self.info["data"], "-m", mode, "-w", "stop"]),
            capture_output=True, check=False,  # stopping a stopped cluster is fine
        )

    def start(self):
        _pg_ctl_start(self.info)

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def _pg_ctl_start(info):
    options = "-p %d -k %s -c listen_addresses=127.0.0.1 %s" % (info["port"], info["socket_dir"], info["options"])
    proc = subprocess.run(
        _as_server_user([os.path.join(info["bin_dir"], "pg_ctl"), "-D", info["data"], "-l", info["log"], "-o", options, "-w", "-t", "60", "start"]),
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        log = open(info["log"]).read()[-2000:] if os.path.exists(info["log"]) else ""
        raise RuntimeError("pg_ctl start failed: %s %s\n%s" % (proc.stdout, proc.stderr, log))


def create(base=None, port=None, fast=True, major=None):
    """initdb and start a cluster under ``base`` (a new temporary directory by default)."""
    base = base or tempfile.mkdtemp(prefix="lifeboat-pg-")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    binaries = bin_dir(major)
    password = secrets.token_urlsafe(18)
    info = {
        "bin_dir": binaries,
        "data": os.path.join(base, "data"),
        "socket_dir": os.path.join(base, "sock"),
        "log": os.path.join(base, "server.log"),
        "port": port or free_port(),
        "password": password,
        # fsync off only where losing the cluster on a crash costs nothing (tests, demo)
        "options": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" if fast else "",
    }
    os.makedirs(info["socket_dir"], exist_ok=True)
    pwfile = os.path.join(base, "pwfile")
    with open(pwfile, "w") as handle:
        handle.write(password + "\n")
    if os.geteuid() == 0:
        uid = pwd.getpwnam(SERVER_USER).pw_uid
        for path in (base, info["socket_dir"], pwfile):
            os.chown(path, uid, -1)
    os.chmod(pwfile, 0o600)
    proc = subprocess.run(
        _as_server_user([os.path.join(binaries, "initdb"), "-D", info["data"], "-U", "postgres", "--pwfile", pwfile,
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]),
        capture_output=True, text=True, check=False,
    )
    os.unlink(pwfile)
    if proc.returncode != 0:
        raise RuntimeError("initdb failed: %s" % proc.stderr)
    _pg_ctl_start(info)
    state = os.path.join(base, "cluster.json")
    with open(state, "w") as handle:
        json.dump(info, handle)
    os.chmod(state, 0o600)
    return Cluster(base, info)


def load(base):
    with open(os.path.join(base, "cluster.json")) as handle:
        return Cluster(base, json.load(handle))


def wait_ready(cluster, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cluster.psql("SELECT 1", check=False).strip() == "1":
            return
        time.sleep(0.2)
    raise RuntimeError("cluster on port %d did not become ready" % cluster.port)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--durable", action="store_true", help="keep fsync on (benchmarks)")
    args = parser.parse_args(argv)
    if args.action == "start":
        cluster = create(args.dir, args.port, fast=not args.durable)
        print(json.dumps({"port": cluster.port, "socket_dir": cluster.socket_dir}))
    else:
        load(args.dir).destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
