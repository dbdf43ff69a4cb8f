"""`lifeboat run` end to end with a real HTTP receiver on 127.0.0.1.

The receiver is a threaded http.server in this process on a free port. It records every request
and, by the first path segment, answers at once (/ok), answers 500 (/error) or sleeps far longer
than the configured timeout (/slow). The run must deliver the webhook in the configured format,
ping the dead-man's switch at start and end, never fail or hang because of the receiver, log
delivery failures, and never put a secret (or the URLs themselves) into a message or a log.
"""

import http.server
import json
import os
import threading
import time
import uuid

import pytest


class Receiver:
    def __init__(self):
        self.requests = []
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "body": body.decode("utf-8"), "at": time.monotonic(),
                                          "content_type": self.headers.get("Content-Type")})
                mode = self.path.split("/")[1]
                if mode == "slow":
                    receiver.release.wait(120)
                status = 500 if mode == "error" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"OK")
                except OSError:
                    pass  # the client gave up long ago

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode, name):
        return "http://127.0.0.1:%d/%s/%s" % (self.server.server_address[1], mode, name)

    def paths(self):
        return [r["path"] for r in self.requests]

    def to(self, path):
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def run_config(pg, age_key, backup_root):
    def build(profile, notify, **top):
        config = {"connection": pg.connection(), "backup_root": backup_root, "host": "db1.example",
                  "encryption": {"mode": "age", "recipients": [age_key[1]]},
                  "profiles": {"shop": profile}, "notify": notify}
        config.update(top)
        return config
    return build


def audit_lines(backup_root):
    with open(os.path.join(backup_root, ".log", "audit.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def assert_no_secrets(texts, *secrets):
    for text in texts:
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize("fmt", ["slack", "discord", "json"])
def test_successful_run_pings_and_sends_the_webhook(cli, receiver, run_config, shop_db, pg, backup_root, fmt):
    token = uuid.uuid4().hex  # stands in for the secret part of a webhook URL
    notify = {"webhook_url": receiver.url("ok", "hook-" + token), "webhook_format": fmt, "on_success": True,
              "deadman_url": receiver.url("ok", "ping-" + token), "timeout": 2}
    config = run_config({"db": shop_db, "retention": {"keep_last": 1}}, notify)
    first = cli(config, "run", "--profile", "shop", check=0)
    proc = cli(config, "--json", "run", "--profile", "shop", check=0)
    report = json.loads(proc.stdout)
    assert report["ok"] and report["failed_step"] is None
    assert {"backup", "verify", "prune"} <= set(report["steps"])  # offsite steps, when configured, run before prune
    assert len(report["prune"]["deleted"]) == 1  # keep_last 1: the second run removes the first backup
    assert all(n["ok"] for n in report["notifications"]) and len(report["notifications"]) == 3

    ping = "/ok/ping-" + token
    assert receiver.paths().count(ping + "/start") == 2 and len(receiver.to(ping)) == 2 and not receiver.to(ping + "/fail")
    assert receiver.paths().index(ping + "/start") < receiver.paths().index(ping)
    hooks = receiver.to("/ok/hook-" + token)
    assert len(hooks) == 2 and hooks[0]["content_type"] == "application/json"
    body = json.loads(hooks[-1]["body"])
    backup_id = report["backup"]["id"]
    if fmt == "slack":
        assert list(body) == ["text"]
        summary = body["text"]
    elif fmt == "discord":
        assert list(body) == ["content"]
        summary = body["content"]
    else:
        assert body["status"] == "success" and body["profile"] == "shop" and body["host"] == "db1.example"
        assert body["error"] is None and body["step"] is None and body["backup_id"] == backup_id and body["deleted"] == 1
        assert {"backup", "verify", "prune"} <= set(body["timings"]["steps"]) and body["timings"]["total_seconds"] > 0
        assert body["timings"]["started"].endswith("Z")
        summary = body["summary"]
    assert summary.startswith("lifeboat: profile shop on db1.example succeeded") and backup_id in summary
    assert "verified (archive)" in summary and "pruned 1" in summary

    email = pg.psql("SELECT email FROM users ORDER BY id LIMIT 1", db=shop_db).strip()
    logs = [r["body"] for r in receiver.requests] + [first.stdout, first.stderr, proc.stdout, proc.stderr]
    logs += [json.dumps(audit_lines(backup_root))]
    assert_no_secrets(logs, pg.password, token, email)


def test_failing_profile_sends_failure_and_exits_non_zero(cli, receiver, run_config, pg, backup_root):
    token = uuid.uuid4().hex
    # Host-wide webhook in one format, the profile overrides the receiver and the format.
    notify = {"webhook_url": receiver.url("ok", "host-hook"), "webhook_format": "slack",
              "deadman_url": receiver.url("ok", "ping-" + token), "timeout": 2}
    profile = {"db": "no_such_db", "retention": {"keep_last": 3},
               "notify": {"webhook_url": receiver.url("ok", "hook-" + token), "webhook_format": "json"}}
    config = run_config(profile, notify)
    proc = cli(config, "run", "--profile", "shop")
    assert proc.returncode == 4, proc.stderr  # DatabaseError's exit code
    assert "run of profile shop failed at step backup" in proc.stderr and "no_such_db" in proc.stderr
    assert not os.path.isdir(os.path.join(backup_root, "shop")) or not [
        n for n in os.listdir(os.path.join(backup_root, "shop")) if not n.startswith(".")]

    ping = "/ok/ping-" + token
    assert receiver.paths().count(ping + "/start") == 1 and len(receiver.to(ping + "/fail")) == 1 and not receiver.to(ping)
    assert not receiver.to("/ok/host-hook")
    body = json.loads(receiver.to("/ok/hook-" + token)[0]["body"])
    assert body["status"] == "failure" and body["step"] == "backup" and body["error_kind"] == "database"
    assert "no_such_db" in body["error"] and body["backup_id"] is None
    assert "FAILED at step backup" in receiver.to(ping + "/fail")[0]["body"]

    run = [line for line in audit_lines(backup_root) if line["action"] == "run"]
    assert run[-1]["result"] == "failed" and run[-1]["detail"] == "failed at step backup"
    assert_no_secrets([r["body"] for r in receiver.requests] + [proc.stdout, proc.stderr, json.dumps(audit_lines(backup_root))],
                      pg.password, token)

    # A profile that is not configured at all still fails loudly and is still reported (host settings).
    proc = cli(config, "run", "--profile", "nosuch", check=2)
    assert "failed at step config" in proc.stderr
    assert "FAILED at step config" in json.loads(receiver.to("/ok/host-hook")[0]["body"])["text"]


def test_slow_receiver_delays_the_run_only_by_the_timeout(cli, receiver, run_config, shop_db, backup_root):
    token = uuid.uuid4().hex
    notify = {"webhook_url": receiver.url("slow", "hook-" + token), "on_success": True,
              "deadman_url": receiver.url("slow", "ping-" + token), "timeout": 1}
    config = run_config({"db": shop_db}, notify)
    began = time.monotonic()
    proc = cli(config, "run", "--profile", "shop", check=0)
    elapsed = time.monotonic() - began
    # The receiver holds every request for 120 s; the run gives up on each after about one second.
    # Generous bound on purpose: it only proves the run did not wait for the receiver.
    assert elapsed < 60, elapsed
    assert "prune skipped: profile shop has no retention policy" in proc.stdout
    assert proc.stderr.count("no answer within 1s") == 3  # start, success ping, webhook
    assert len(receiver.requests) == 3
    failures = [line for line in audit_lines(backup_root) if line["action"] == "notify"]
    assert len(failures) == 3 and all(f["result"] == "failed" for f in failures)
    assert {f["detail"] for f in failures} == {"deadman delivery (start) failed", "deadman delivery (success) failed",
                                               "webhook delivery (success) failed"}
    assert_no_secrets([proc.stdout, proc.stderr, json.dumps(failures)], token, "127.0.0.1:")


def test_receiver_answering_500_is_logged_and_the_run_succeeds(cli, receiver, run_config, shop_db, backup_root):
    token = uuid.uuid4().hex
    notify = {"webhook_url": receiver.url("error", "hook-" + token), "webhook_format": "discord", "on_success": True,
              "deadman_url": receiver.url("error", "ping-" + token)}
    config = run_config({"db": shop_db, "retention": {"keep_daily": 7}}, notify)
    proc = cli(config, "--json", "run", "--profile", "shop", check=0)
    report = json.loads(proc.stdout)
    assert report["ok"] and report["prune"]["kept"] == [report["backup"]["id"]]
    assert [n["error"] for n in report["notifications"]] == ["receiver answered HTTP 500"] * 3
    assert len(receiver.requests) == 3
    assert json.loads(receiver.to("/error/hook-" + token)[0]["body"])["content"].startswith("lifeboat: profile shop")
    failures = [line for line in audit_lines(backup_root) if line["action"] == "notify"]
    assert [f["error"] for f in failures] == ["receiver answered HTTP 500"] * 3
    assert_no_secrets([proc.stdout, proc.stderr, json.dumps(audit_lines(backup_root))], token)


def test_nothing_is_sent_without_settings_and_no_webhook_on_success_unless_asked(cli, receiver, run_config, shop_db):
    config = run_config({"db": shop_db}, {"webhook_url": receiver.url("ok", "hook")})
    proc = cli(config, "--json", "run", "--profile", "shop", check=0)
    assert json.loads(proc.stdout)["notifications"] == []
    assert receiver.requests == []


FAILING_PG_RESTORE = """#!/bin/sh
# Fault injection: a pg_restore that reports its real version but cannot read any archive.
if [ "$1" = "--version" ]; then exec "%s" --version; fi
cat > /dev/null
echo "pg_restore: error: injected fault for the test" >&2
exit 1
"""


def test_failed_verification_is_named_notified_and_keeps_the_backup(cli, receiver, run_config, pg, shop_db, backup_root, tmp_path):
    bin_dir = tmp_path / "pgbin"
    bin_dir.mkdir()
    real = pg.info["bin_dir"]
    for name in ("pg_dump", "pg_dumpall"):
        (bin_dir / name).symlink_to(os.path.join(real, name))
    (bin_dir / "pg_restore").write_text(FAILING_PG_RESTORE % os.path.join(real, "pg_restore"))
    (bin_dir / "pg_restore").chmod(0o755)
    notify = {"webhook_url": receiver.url("ok", "hook"), "deadman_url": receiver.url("ok", "ping")}
    config = run_config({"db": shop_db, "retention": {"keep_last": 1}}, notify,
                        connection=dict(pg.connection(), pg_bin_dir=str(bin_dir)))
    proc = cli(config, "run", "--profile", "shop")
    assert proc.returncode == 6, proc.stderr  # VerifyError's exit code
    assert "run of profile shop failed at step verify" in proc.stderr
    body = json.loads(receiver.to("/ok/hook")[0]["body"])
    assert body["status"] == "failure" and body["step"] == "verify" and body["error_kind"] == "verify"
    assert len(receiver.to("/ok/ping/fail")) == 1 and not receiver.to("/ok/ping")
    backups = [n for n in os.listdir(os.path.join(backup_root, "shop")) if not n.startswith(".")]
    assert len(backups) == 1  # written, recorded as failed, and not pruned: prune never ran
    with open(os.path.join(backup_root, "shop", backups[0], "verification.json")) as handle:
        assert json.load(handle)["ok"] is False


def test_failing_prune_step_after_a_good_backup(cli, receiver, run_config, shop_db, backup_root):
    config = run_config({"db": shop_db, "retention": {"keep_last": 0, "keep_within": "0d"}},
                        {"webhook_url": receiver.url("ok", "hook"), "webhook_format": "discord"})
    proc = cli(config, "run", "--profile", "shop", check=2)
    assert "run of profile shop failed at step prune: profile shop: retention: the policy is empty or all zero" in proc.stderr
    assert "FAILED at step prune" in json.loads(receiver.to("/ok/hook")[0]["body"])["content"]
    assert len([n for n in os.listdir(os.path.join(backup_root, "shop")) if not n.startswith(".")]) == 1
