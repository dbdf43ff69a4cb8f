"""make demo: the daily backup of a sample shop through Ansible, proven restorable, in about a minute.

1. a throwaway PostgreSQL cluster (scripts/pgcluster.py) with the sample shop database
   (scripts/sample_shop.py: users, orders, payments, tickets);
2. a fresh demo age key;
3. ansible-playbook playbooks/daily_backup.yml on inventories/local: three profiles, each dumped and read back
   (verify level archive);
4. restore-level verification of each backup with the lifeboat command (restore into a scratch database,
   compare every table's row count and the newest timestamps with the manifest, drop it);
5. a summary. The cluster and every file are removed at the end, also on failure (--keep leaves the
   backups and the key for a look around).

The database password goes to ansible-playbook and lifeboat in 0600 files, never on a command line.

    .venv/bin/python scripts/demo.py [--payments N] [--keep]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from scripts import pgcluster, sample_shop  # noqa: E402

VENV_BIN = os.path.join(REPO, ".venv", "bin")
COLLECTIONS = os.path.join(REPO, ".build", "collections")
DB = "shop"
PROFILES = {
    "payments": {
        "db": DB,
        "tables": ["public.payments"],
        "freshness_columns": {"public.payments": "created_at"},
    },
    "orders_tickets": {
        "db": DB,
        "tables": ["public.orders", "public.tickets"],
        "freshness_columns": {"public.orders": "created_at", "public.tickets": "created_at"},
    },
    "full": {
        "db": DB,
        "freshness_columns": {"public.payments": "created_at", "public.orders": "created_at"},
    },
}


class DemoError(Exception):
    pass


def step(text):
    print("\n==> %s" % text, flush=True)


def size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def write_private(path, data):
    """A 0600 file from the start: it holds the database password."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)  # JSON is YAML: both ansible-playbook and lifeboat read it
    return path


def run(argv, env=None, capture=False):
    proc = subprocess.run(argv, env=env, check=False, text=True, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip() if capture else "see the output above"
        program = os.path.basename(argv[1] if argv[0] == sys.executable else argv[0])
        raise DemoError("%s failed (exit %d): %s" % (program, proc.returncode, detail))
    return proc.stdout


def age_key(directory):
    identity = os.path.join(directory, "demo-identity.txt")
    run(["age-keygen", "-o", identity], capture=True)
    os.chmod(identity, 0o600)
    public = run(["age-keygen", "-y", identity], capture=True).strip()
    return identity, public


def ansible_env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_CONFIG=os.path.join(REPO, "tests", "ansible.cfg"),
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_FORCE_COLOR=env.get("ANSIBLE_FORCE_COLOR", "1" if sys.stdout.isatty() else "0"),
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
    )
    return env


def lifeboat(config_path, *args):
    """The lifeboat command with --json; its one JSON line."""
    out = run([os.path.join(VENV_BIN, "python"), os.path.join(REPO, "bin", "lifeboat"), "--config", config_path, "--json"] + list(args),
              capture=True)
    return json.loads(out.strip().splitlines()[-1])


def check_setup():
    if not os.path.exists(os.path.join(COLLECTIONS, "ansible_collections", "lifeboat", "backup", "galaxy.yml")):
        raise DemoError("the collection is not on the collections path yet: run scripts/bootstrap.sh core (or make demo)")
    for tool in ("age", "age-keygen", "zstd"):
        if not shutil.which(tool):
            raise DemoError("%s is not installed: run scripts/bootstrap.sh core (or make demo)" % tool)


def demo(work, payments):
    started = time.time()
    check_setup()

    step("Starting a throwaway PostgreSQL cluster")
    cluster = pgcluster.create()  # its own directory: the server runs as another OS user when we are root
    try:
        return _with_cluster(cluster, work, payments, started)
    finally:
        cluster.destroy()
        print("\nStopped and removed the demo cluster.", flush=True)


def _with_cluster(cluster, work, payments, started):
    print("PostgreSQL on 127.0.0.1:%d (data in %s)" % (cluster.port, cluster.info["data"]))

    step("Creating the sample shop database (users, orders, payments, tickets)")
    counts = sample_shop.create_shop(cluster, DB, payments=payments)
    print(", ".join("%s: %d rows" % item for item in sorted(counts.items())))

    step("Generating a fresh demo age key")
    identity, public = age_key(work)
    print("identity %s (0600), recipient %s" % (identity, public))

    settings = {
        "agent_connection": cluster.connection(),
        "agent_backup_root": os.path.join(work, "backups"),
        "agent_log_dir": os.path.join(work, "log"),
        "agent_metrics_dir": os.path.join(work, "metrics"),
        "agent_encryption_mode": "age",
        "agent_recipients": [public],
        "agent_profiles": PROFILES,
    }
    extra_vars = write_private(os.path.join(work, "demo-vars.yml"), settings)

    step("ansible-playbook playbooks/daily_backup.yml -i inventories/local (dump + archive verification per profile)")
    playbook_started = time.time()
    run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "daily_backup.yml"),
         "-i", os.path.join(REPO, "inventories", "local"), "-e", "@" + extra_vars], env=ansible_env())
    playbook_seconds = time.time() - playbook_started

    config = write_private(os.path.join(work, "lifeboat.yml"), {
        "connection": cluster.connection(),
        "backup_root": settings["agent_backup_root"],
        "log_dir": settings["agent_log_dir"],
        "metrics_dir": settings["agent_metrics_dir"],
        "encryption": {"mode": "age", "recipients": [public]},
        "profiles": PROFILES,
    })
    catalog = lifeboat(config, "list")

    step("Restore-level verification with the lifeboat command (scratch database, row counts, freshness)")
    restored = {}
    for name in PROFILES:
        result = lifeboat(config, "verify", "--profile", name, "--level", "restore", "--identity", identity)
        restored[name] = result
        print("%s: backup %s restored and matched the manifest in %.1fs" % (name, result["id"], result["duration_seconds"]))

    summary(cluster, catalog, restored, playbook_seconds, time.time() - started)
    return 0


def summary(cluster, catalog, restored, playbook_seconds, total_seconds):
    step("Summary")
    print("%-15s %-18s %10s %8s  %-22s %s" % ("profile", "backup id", "size", "dump", "read back (archive)", "restore check"))
    for name in PROFILES:
        backup = catalog[name]["backups"][-1]
        verification = backup.get("verification") or {}
        print("%-15s %-18s %10s %7.1fs  %-22s %s" % (
            name, backup["id"], size(backup["bytes"]), backup["duration_seconds"],
            "ok in %.2fs" % verification["duration_seconds"] if verification.get("ok") else "NOT VERIFIED",
            "ok in %.2fs" % restored[name]["duration_seconds"]))

    print("\nRow counts: source database now vs. restored copy (checked table by table)")
    print("%-15s %-22s %10s %10s" % ("profile", "table", "source", "restored"))
    for name in PROFILES:
        for table in restored[name]["tables"]:
            schema, relname = table["table"].split(".", 1)
            source = int(cluster.psql('SELECT count(*) FROM "%s"."%s"' % (schema, relname), db=DB))
            mark = "" if source == table["rows"] else "  (differs: rows were written after the dump)"
            print("%-15s %-22s %10d %10d%s" % (name, table["table"], source, table["rows"], mark))
    print("\nansible-playbook took %.1fs; the whole demo %.1fs." % (playbook_seconds, total_seconds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=100000, help="payment rows in the sample shop (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the backups, logs and demo key (the cluster is always removed)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up on kill too
    os.umask(0o077)
    work = tempfile.mkdtemp(prefix="lifeboat-demo-")
    try:
        return demo(work, args.payments)
    except (DemoError, RuntimeError) as exc:
        print("\ndemo failed: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print("Kept %s (backups, logs, metrics, demo key)." % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
