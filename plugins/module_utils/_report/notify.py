# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Telling someone: a webhook on failure (and on success when asked) and a dead-man's switch.

Settings come from the ``notify`` section, per host with per-profile
overrides. The dead-man's switch follows the healthchecks.io convention:
``<url>/start`` when a run starts, ``<url>`` when it succeeds, ``<url>/fail``
when it fails, so a run that never happened is noticed by the receiver.

A receiver can be slow, down or wrong; none of that may fail a backup or
hold it up for longer than ``timeout``. Each delivery runs in a daemon
thread that the run waits for at most ``timeout`` seconds; a delivery that
did not finish is abandoned and, like every failed delivery, written to the
audit log. The URLs are secrets (a Slack webhook URL is a credential): they
never appear in a message, a log line or a result. Messages carry the
profile, host, step, timings and the engine's error text with every
configured secret redacted; never table contents.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import socket
import threading
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, build_opener

from .._config.schema import effective_section
from .._errors import LifeboatError
from .._version import ENGINE_VERSION
from . import audit as _audit
from . import metrics as _metrics

MAX_TEXT = 1900  # Discord rejects content over 2000 characters
MAX_ERROR = 1000
_CREDENTIALS_IN_URL = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
_PASSWORD_WORDS = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)\s*[=:]\s*\S+")


def settings_for(config, profile_name):
    """The notify section for this profile; the host's own when the profile is unknown (it may be the error)."""
    if profile_name in config.get("profiles", {}):
        return effective_section(config, profile_name, "notify")
    return dict(config["notify"])


def configured_secrets(config, settings):
    """Every secret value in the configuration: these strings are cut out of every message."""
    values = [settings.get("webhook_url"), settings.get("deadman_url")]
    for section in ("connection", "scratch"):
        values.append((config.get(section) or {}).get("login_password"))
    offsite = dict(config.get("offsite") or {})
    for profile in (config.get("profiles") or {}).values():
        offsite.update((k, v) for k, v in (profile.get("offsite") or {}).items() if v)
        values.append((profile.get("notify") or {}).get("webhook_url"))
        values.append((profile.get("notify") or {}).get("deadman_url"))
    values += [offsite.get(k) for k in ("access_key", "secret_key", "session_token")]
    return sorted(set(v for v in values if isinstance(v, str) and len(v) >= 4), key=len, reverse=True)


def redact(text, secrets):
    """One line, bounded, with secrets and password-looking assignments removed."""
    text = " ".join(str(text).split())
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _CREDENTIALS_IN_URL.sub(r"\1***@", text)
    text = _PASSWORD_WORDS.sub(lambda m: "%s=***" % m.group(1), text)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def deadman_target(url, suffix):
    """``https://hc.example/ping/uuid`` + ``/start`` keeping any query string in place."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix)) if suffix else url


class Delivery(threading.Thread):
    """One HTTP POST in a daemon thread, so a receiver that never answers cannot keep the run alive."""

    def __init__(self, target, event, url, body, content_type, timeout):
        super(Delivery, self).__init__(name="lifeboat-notify-%s" % target)
        self.daemon = True
        self.target, self.event = target, event
        self.url, self.body, self.content_type, self.timeout = url, body, content_type, timeout
        self.error = None
        self.status = None

    def run(self):
        if urlsplit(self.url).scheme not in ("http", "https"):  # the schema checks too; never file: or ftp:
            self.error = "only http and https URLs are used"
            return
        request = Request(self.url, data=self.body, method="POST", headers={  # noqa: S310 - scheme checked above
            "Content-Type": self.content_type, "User-Agent": "lifeboat/%s" % ENGINE_VERSION})
        try:
            with build_opener().open(request, timeout=self.timeout) as response:  # honours http(s)_proxy like curl
                self.status = response.status
                response.read(65536)
        except HTTPError as exc:
            self.status = exc.code
            self.error = "receiver answered HTTP %d" % exc.code
        except URLError as exc:  # the reason, never the URL
            if isinstance(exc.reason, socket.timeout):
                self.error = "no answer within %ds" % self.timeout
            else:
                self.error = "cannot reach the receiver: %s" % (getattr(exc.reason, "strerror", None) or exc.reason)
        except socket.timeout:  # TimeoutError on Python 3.10+
            self.error = "no answer within %ds" % self.timeout
        except Exception as exc:  # timeouts, resets, bad answers: a notification must never raise
            detail = str(getattr(exc, "strerror", None) or exc)
            parts = urlsplit(self.url)
            if any(part and part in detail for part in (parts.netloc, parts.path.strip("/"), parts.query)):
                detail = "(detail withheld: it quotes the URL)"
            self.error = "%s: %s" % (type(exc).__name__, detail or "no detail")

    def outcome(self):
        if self.is_alive():
            self.error = "no answer within %ds; delivery abandoned" % self.timeout
        ok = self.error is None
        return {"target": self.target, "event": self.event, "ok": ok, "error": self.error}


class Notifier:
    """Notifications of one scheduled run of one profile.

    ``deadman``: False for what is not a backup (a drill, a rotation): the dead-man's switch watches the backups, and
    a ping from anything else would say they failed, or that they ran.
    """

    def __init__(self, config, profile_name, deadman=True):
        self.config = config
        self.profile = profile_name
        self.settings = settings_for(config, profile_name)
        self.secrets = configured_secrets(config, self.settings)  # the unused dead-man's URL is still cut from messages
        if not deadman:
            self.settings = dict(self.settings, deadman_url=None)
        self.timeout = self.settings.get("timeout") or 5
        self.deliveries = []  # outcomes, for the run's report
        self._start = None

    def start(self):
        """Ping ``/start`` in the background: the backup does not wait for it."""
        url = self.settings.get("deadman_url")
        if url:
            self._start = self._deliver("deadman", "start", deadman_target(url, "/start"), b"", "text/plain")

    def success(self, report):
        return self._finish(report, None)

    def failure(self, report, error):
        return self._finish(report, error)

    def _finish(self, report, error):
        status = "failure" if error is not None else "success"
        pending = []
        if self._start is not None:
            pending.append(self._start)
        url = self.settings.get("deadman_url")
        summary = text(self.config, self.profile, report, error, self.secrets)
        if url:
            pending.append(self._deliver("deadman", status, deadman_target(url, "/fail" if error is not None else ""),
                                         summary.encode("utf-8"), "text/plain; charset=utf-8"))
        if self.settings.get("webhook_url") and (error is not None or self.settings.get("on_success")):
            body = webhook_body(self.settings.get("webhook_format") or "json", self.config, self.profile, report, error,
                                self.secrets)
            pending.append(self._deliver("webhook", status, self.settings["webhook_url"],
                                         json.dumps(body, sort_keys=True).encode("utf-8"), "application/json"))
        deadline = time.monotonic() + self.timeout + 0.5  # every delivery started together: one timeout in all
        for delivery in pending:
            delivery.join(max(0.0, deadline - time.monotonic()))
        self._start = None
        outcomes = [d.outcome() for d in pending]
        self.deliveries.extend(outcomes)
        self._log_failures([o for o in outcomes if not o["ok"]])
        return outcomes

    def _deliver(self, target, event, url, body, content_type):
        delivery = Delivery(target, event, url, body, content_type, self.timeout)
        delivery.start()
        return delivery

    def _log_failures(self, failures):
        if not failures:
            return
        database = (self.config.get("profiles", {}).get(self.profile) or {}).get("db")
        try:
            for failure in failures:
                _audit.record(self.config["log_dir"], "notify", profile=self.profile, result="failed",
                              error=redact(failure["error"], self.secrets), via="cron",
                              detail="%s delivery (%s) failed" % (failure["target"], failure["event"]))
            if database:
                name = "lifeboat_notify_failures_total"
                previous = _metrics.read(self.config["metrics_dir"], self.profile).get(name, 0)
                _metrics.update(self.config["metrics_dir"], self.profile, database, values={name: previous + len(failures)})
        except (LifeboatError, OSError):
            pass  # the log is on a full or read-only disk: the run's own result still stands


def text(config, profile_name, report, error, secrets):
    """The one human line: what ran where, how it ended, how long it took."""
    took = report.get("duration_seconds")
    took = " after %.1fs" % took if took is not None else ""
    if error is not None:
        line = "lifeboat: profile %s on %s FAILED at step %s%s: %s" % (
            profile_name, config["host"], report.get("failed_step") or "unknown", took, redact(error, secrets))
    else:
        backup = report.get("backup") or {}
        line = "lifeboat: profile %s on %s succeeded%s: backup %s" % (profile_name, config["host"], took, backup.get("id"))
        if backup.get("verification"):
            line += ", verified (%s)" % backup["verification"]["level"]
        if report.get("prune"):
            line += ", pruned %d" % len(report["prune"]["deleted"])
    return line[:MAX_TEXT]


def webhook_body(fmt, config, profile_name, report, error, secrets):
    summary = text(config, profile_name, report, error, secrets)
    if fmt == "slack":
        return {"text": summary}
    if fmt == "discord":
        return {"content": summary}
    backup = report.get("backup") or {}
    return {
        "source": "lifeboat",
        "version": ENGINE_VERSION,
        "profile": profile_name,
        "host": config["host"],
        "status": "failure" if error is not None else "success",
        "step": report.get("failed_step"),
        "error": redact(error, secrets) if error is not None else None,
        "error_kind": getattr(error, "kind", None) if error is not None else None,
        "backup_id": backup.get("id"),
        "bytes": backup.get("bytes"),
        "verified": bool(backup.get("verification")),
        "deleted": len((report.get("prune") or {}).get("deleted") or []),
        "timings": {
            "started": _iso(report.get("started")),
            "finished": _iso(report.get("finished")),
            "total_seconds": report.get("duration_seconds"),
            "steps": dict(report.get("steps") or {}),
        },
        "summary": summary,
    }


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None
