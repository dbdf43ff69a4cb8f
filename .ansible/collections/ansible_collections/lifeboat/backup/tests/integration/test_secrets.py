"""The database password never shows: not in any process's argv or environment, logs, metrics,
manifests, module results or ``ansible -vvv`` output; the private passfile is 0600 and removed."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG_ROWS = 200000  # ~35 MB: at zstd -12 the dump streams for seconds while /proc is scanned


@pytest.fixture(scope="module")
def big_db(pg):
    pg.psql("CREATE DATABASE secrets_big")
    pg.psql("CREATE TABLE payload (id int, a text, b text); "
            "INSERT INTO payload SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), "
            "encode(sha256(g::text::bytea), 'base64') FROM generate_series(1, %d) g" % BIG_ROWS, db="secrets_big")
    return "secrets_big"


def read_proc(pid, name):
    try:
        with open("/proc/%s/%s" % (pid, name), "rb") as handle:
            return handle.read()
    except OSError:
        return b""  # gone meanwhile


def parent_of(pid):
    stat_line = read_proc(pid, "stat")
    return stat_line[stat_line.rfind(b")") + 2:].split()[1].decode() if stat_line else None


def descends_from(pid, ancestor):
    """Other helpers run pg_dump on this machine too: only our own run's children count."""
    for _attempt in range(10):
        pid = parent_of(pid)
        if pid is None or pid in ("0", "1"):
            return False
        if pid == str(ancestor):
            return True
    return False


def files_under(path):
    for base, _dirs, names in os.walk(path):
        for name in names:
            yield os.path.join(base, name)


def assert_absent(secret, path):
    """The secret's bytes appear in no file under ``path``."""
    checked = 0
    for name in files_under(path):
        with open(name, "rb") as handle:
            assert secret not in handle.read(), "password found in %s" % name
        checked += 1
    return checked


def test_password_in_no_argv_or_environment_and_passfile_private(pg, big_db, age_key, tmp_path):
    password = pg.password.encode()
    root = str(tmp_path / "backups")
    config = tmp_path / "lifeboat.yml"
    config.write_text(json.dumps({
        "connection": pg.connection(),
        "backup_root": root,
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {"big": {"db": big_db, "compression_level": 12}},
    }))
    config.chmod(0o600)
    run = subprocess.Popen([sys.executable, os.path.join(REPO, "bin", "lifeboat"), "--config", str(config), "backup", "--profile", "big"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = {}  # program name -> times seen
    passfiles = set()
    scans = 0
    while run.poll() is None:
        scans += 1
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            argv = read_proc(pid, "cmdline")
            assert password not in argv, "password in the argv of pid %s: %r" % (pid, argv.split(b"\0")[0])
            environ = read_proc(pid, "environ")
            assert password not in environ, "password in the environment of pid %s: %r" % (pid, argv.split(b"\0")[0])
            program = os.path.basename(argv.split(b"\0")[0]).decode(errors="replace")
            if program in ("pg_dump", "zstd", "age", "pg_dumpall") and descends_from(pid, run.pid):
                seen[program] = seen.get(program, 0) + 1
                for item in environ.split(b"\0"):
                    if item.startswith(b"PGPASSFILE="):
                        passfiles.add(item.split(b"=", 1)[1].decode())
        for path in list(passfiles):
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            assert stat.S_IMODE(info.st_mode) == 0o600, "passfile %s is %o" % (path, stat.S_IMODE(info.st_mode))
            assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
            with open(path, "rb") as handle:
                assert password in handle.read()  # it is the file libpq reads, not a decoy
        time.sleep(0.01)
    out, err = run.communicate()
    assert run.returncode == 0, err
    # The scan really ran while the pipeline was there.
    assert seen.get("pg_dump", 0) >= 3 and seen.get("zstd") and seen.get("age"), (seen, scans)
    assert len(passfiles) == 1
    passfile = passfiles.pop()
    assert not os.path.exists(passfile) and not os.path.exists(os.path.dirname(passfile))
    assert password not in out + err
    assert assert_absent(password, root) >= 5  # artifacts, manifest, audit log, metrics, lock


def test_password_absent_from_module_results_logs_and_vvv_output(module, pg, shop_db, age_key, tmp_path):
    password = pg.password
    root = str(tmp_path / "backups")
    common = dict(pg.connection(), backup_root=root)
    dumped = module("dump", dict(common, db=shop_db, profile="shop", recipients=[age_key[1]], verify="archive"), verbosity=3)
    assert not dumped.failed, dumped.result
    verified = module("verify", dict(common, profile="shop", level="restore", identity_file=age_key[0]), verbosity=3)
    assert not verified.failed, verified.result
    restored = module("restore", dict(common, profile="shop", db=shop_db + "_copy", identity_file=age_key[0], globals=True),
                      verbosity=3)
    assert not restored.failed, restored.result
    wrong = module("dump", dict(common, db=shop_db, profile="shop", recipients=[age_key[1]], login_password=password[::-1]),
                   verbosity=3)
    assert wrong.failed and "password authentication failed" in wrong["msg"]
    for run in (dumped, verified, restored, wrong):
        assert "-vvv" in run.proc.args and "ESTABLISH LOCAL CONNECTION" in run.proc.stdout  # really verbose
        assert password not in json.dumps(run.result)
        assert password not in run.proc.stdout + run.proc.stderr
        assert password[::-1] not in run.proc.stdout + run.proc.stderr
    assert assert_absent(password.encode(), root) >= 6
    with open(os.path.join(root, ".log", "audit.jsonl")) as handle:
        actions = [json.loads(line)["action"] for line in handle]
    assert actions == ["backup", "verify", "verify", "restore", "backup"]
