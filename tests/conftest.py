"""Shared fixtures: a real PostgreSQL cluster, a real age key, the engine, the modules and the CLI.

Everything here talks to real programs. One cluster per test session (per
xdist worker); each test gets databases and a backup root of its own.
"""

import importlib
import json
import os
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from scripts import pgcluster, sample_shop  # noqa: E402

COLLECTIONS = os.path.join(REPO, ".build", "collections")
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def load_engine():
    """The engine package exactly as the lifeboat command loads it."""
    if "lifeboat_engine" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lifeboat_launcher", os.path.join(REPO, "bin", "lifeboat"),
                                                      loader=importlib.machinery.SourceFileLoader("lifeboat_launcher", os.path.join(REPO, "bin", "lifeboat")))
        launcher = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(launcher)
        launcher.load_engine()
    return sys.modules["lifeboat_engine"]


# Short names the tests use for engine modules (see docs/architecture.md for the layers).
ENGINE_MODULES = {
    "cli": "_front.cli",
    "module": "_front.module",
    "dump": "_actions.backup",
    "verify": "_actions.verify",
    "restore": "_actions.restore",
    "prune": "_actions.prune",
    "push": "_actions.push",
    "remote": "_offsite.remote",
    "offsite_pull": "_actions.pull",
    "offsite_prune": "_actions.remote_prune",
    "run": "_actions.scheduled_run",
    "pg": "_postgres.session",
    "tables": "_postgres.tables",
    "toc": "_postgres.restore_list",
    "offsets": "_postgres.archive_toc",
    "overlap": "_postgres.overlap",
    "database_level": "_postgres.database_level",
    "pipeline": "_stream.pipeline",
    "codec": "_stream.codec",
    "artifacts": "_stream.artifacts",
    "scratch": "_stream.scratch",
    "children": "_stream.children",
    "storage": "_store.files",
    "catalog": "_store.catalog",
    "manifest": "_store.manifest",
    "retention": "_store.retention",
    "s3": "_offsite.s3",
    "audit": "_report.audit",
    "metrics": "_report.metrics",
    "notify": "_report.notify",
    "config": "_config.schema",
    "errors": "_errors",
    "version": "_version",
    "operation": "_actions.operation",
    "rotate": "_actions.rotate",
    "rotate_offsite_key": "_actions.rotate_offsite_key",
    "iam": "_offsite.iam",
    "scram": "_postgres.scram",
    "roles": "_postgres.roles",
    "consumers": "_store.consumers",
    "gate": "_store.gate",
    "rotation_state": "_store.rotation_state",
    "drill": "_actions.drill",
    "drill_report": "_report.drill_report",
}


class Engine:
    """Attribute access to engine modules: engine.dump is lifeboat_engine._actions.backup."""

    def __getattr__(self, name):
        load_engine()
        return importlib.import_module("lifeboat_engine." + ENGINE_MODULES[name])


@pytest.fixture(scope="session")
def engine():
    return Engine()


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    cluster = pgcluster.create()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def age_key(tmp_path_factory):
    """A throwaway age identity: (identity file, public recipient)."""
    directory = tmp_path_factory.mktemp("age")
    identity = directory / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True).stdout.strip()
    return str(identity), public


@pytest.fixture(scope="session")
def shop_template(pg):
    """A sample shop database used as a template: copying it is much faster than regenerating."""
    sample_shop.create_shop(pg, "shop_template", payments=5000)
    return "shop_template"


@pytest.fixture
def shop_db(pg, shop_template):
    """A fresh copy of the sample shop for this test."""
    name = "shop_%s" % uuid.uuid4().hex[:8]
    pg.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, shop_template))
    return name


@pytest.fixture
def backup_root(tmp_path):
    return str(tmp_path / "backups")


@pytest.fixture
def make_config(engine, pg, age_key, backup_root):
    """Build a validated engine configuration for this test's cluster, key and backup root."""

    def build(profiles, encryption=None, **top):
        data = {
            "connection": pg.connection(),
            "backup_root": backup_root,
            "encryption": encryption or {"mode": "age", "recipients": [age_key[1]]},
            "profiles": profiles,
        }
        data.update(top)
        return engine.config.validate_config(data)

    return build


def ansible_env(**extra):
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"),
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_CONFIG=os.path.join(REPO, "tests", "ansible.cfg"),
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
    )
    env.update(extra)
    return env


class ModuleRun:
    def __init__(self, result, proc):
        self.result = result
        self.proc = proc

    @property
    def failed(self):
        return bool(self.result.get("failed"))

    @property
    def changed(self):
        return bool(self.result.get("changed"))

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)


def run_module(name, args, check=False, verbosity=0):
    """``ansible localhost -m lifeboat.backup.<name>`` and the module's result."""
    argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-c", "local", "-m", "lifeboat.backup." + name, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(), timeout=600, check=False)
    try:
        document = json.loads(proc.stdout[proc.stdout.index("{"):])
        result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible output not understood (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    return ModuleRun(result, proc)


@pytest.fixture
def receiver(monkeypatch):
    """The real HTTP receiver of the notification tests (integration/test_notify.py), on loopback."""
    from test_notify import Receiver

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback only, never through a proxy (ansible's children inherit this)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def module():
    return run_module


@pytest.fixture
def cli(tmp_path):
    """Run the lifeboat command with a config file written from a dict."""

    def run(config, *args, check=None):
        path = tmp_path / "lifeboat.yml"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        proc = subprocess.run([os.path.join(VENV_BIN, "python"), os.path.join(REPO, "bin", "lifeboat"), "--config", str(path)] + list(args),
                              capture_output=True, text=True, timeout=600, check=False)
        if check is not None:
            assert proc.returncode == check, "rc %d, expected %d\nstdout: %s\nstderr: %s" % (proc.returncode, check, proc.stdout, proc.stderr)
        return proc

    return run
