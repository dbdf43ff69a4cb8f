# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotating the offsite access key of an IAM user: create a second key, test it, switch the hosts, delete the old.

- due: the key in use (the configured ``access_key``) is older than ``max_age`` by its IAM CreateDate (or by this
  host's record of the last rotation, for a store that keeps no date), or ``force``;
- create: IAM CreateAccessKey; a user that already has two keys (AWS's limit) is refused, naming the key to delete;
- test: a fresh S3 client holding only the new key lists the bucket's prefix, puts, gets (bytes compared) and deletes
  one probe object under it, waiting a few seconds for a key that is not valid yet (AWS needs a moment);
- finish: every consumer file is rewritten atomically (owner, group and mode kept, 0600), read back, then the old
  key is deleted.

A failure before finish deletes the new key and puts the consumer files back: the old key stays in force, and the
error says what failed. The secret is held in memory and written only to the consumer files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import secrets
import time

from .._config.schema import DEFAULT_CONFIG_PATH
from .._errors import ConfigError, LifeboatError, LockError, OffsiteError
from .._offsite import iam as _iam
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._report import metrics as _metrics
from .._report import notify as _notify
from .._store import consumers as _consumers
from .._store import rotation_state as _state
from .operation import Operation
from .rotate import DEFAULT_MAX_AGE, _iso, _one_at_a_time, _seconds

KEY_WAIT = 5.0  # seconds a new key may take to become valid (AWS IAM is eventually consistent; SeaweedFS at once)
KEY_POLL = 0.5
ENV_KEYS = {"key": "AWS_SECRET_ACCESS_KEY", "user_key": "AWS_ACCESS_KEY_ID"}
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class Request:
    """The validated options of one key rotation."""

    DEFAULTS = {"user": None, "max_age": DEFAULT_MAX_AGE, "force": False, "admin": None, "iam_endpoint_url": None,
                "consumers": (), "profile": None, "state_dir": None, "config_path": DEFAULT_CONFIG_PATH}

    def __init__(self, config, **options):
        unknown = sorted(set(options) - set(self.DEFAULTS))
        if unknown:
            raise TypeError("unknown key rotation options: %s" % ", ".join(unknown))
        option = dict(self.DEFAULTS, **options)
        consumers = list(option["consumers"] or ()) or [{"type": "lifeboat_config", "path": option["config_path"]}]
        self.consumers = [_consumers.normalize(c, ENV_KEYS) for c in consumers]
        bad = [c["path"] for c in self.consumers if c["type"] not in ("env", "lifeboat_config")]
        if bad:
            raise ConfigError("consumers: an offsite access key goes into env or lifeboat_config files, not %s" % ", ".join(bad))
        self.target = _remote.target(config, option["profile"])
        if not self.target.get("access_key") and not self.target.get("aws_profile"):
            self.target.update(self._key_in_force())
        if not (self.target.get("access_key") and self.target.get("secret_key")):
            raise ConfigError("offsite: rotating an access key needs the key in use, as access_key and secret_key or in "
                              "the offsite section of a lifeboat_config consumer (keys from aws_profile or boto3's "
                              "chain are not rotated by lifeboat)")
        if self.target.get("session_token"):
            raise ConfigError("offsite.session_token: temporary credentials expire by themselves; only a user's "
                              "access key is rotated")
        self.active_id = self.target["access_key"]
        self.user = option["user"]
        self.admin = dict((k, v) for k, v in (option["admin"] or {}).items() if v) or None
        if self.admin and not self.user:
            raise ConfigError("user: name the IAM user whose key is rotated when admin credentials are given (without "
                              "them, the user is the owner of the key being rotated)")
        self.max_age = _seconds("max_age", option["max_age"])
        self.force = bool(option["force"])
        self.iam_endpoint_url = option["iam_endpoint_url"]
        self.state_dir = option["state_dir"] or "%s/.rotation" % config["backup_root"].rstrip("/")

    def _key_in_force(self):
        """The key the host uses now, from the first lifeboat configuration consumer's top-level offsite section.

        After a rotation the inventory that wrote the file may still hold the deleted key; the file is what the host's
        backups push with, so a scheduled rotation given no key rotates that one.
        """
        for consumer in self.consumers:
            if consumer["type"] == "lifeboat_config":
                found = _consumers.offsite_keys_of(consumer, _consumers.read(consumer["path"]))
                if found:
                    return {"access_key": found[0][0], "secret_key": found[0][1]}
        return {}


def role_of(user):
    """The metrics' and audit's name of the credential: ``offsite:<user>`` beside the database roles."""
    return "offsite:%s" % user


def due(created, now, max_age, force=False):
    """Whether a key created at ``created`` (Unix time; None: unknown) must be rotated now."""
    return bool(force) or created is None or now - created >= max_age


def next_due(created, now, max_age):
    return _iso(created + max_age) if created is not None else _iso(now)


def two_keys_refusal(user, keys, active_id):
    """The message for a user that already holds AWS's two keys: which one no host uses, and how to delete it."""
    others = [k["id"] for k in keys if k["id"] != active_id]
    spare = others[0] if others else keys[-1]["id"]
    return ("IAM user %s already has %d access keys (%s), AWS's limit, so a new one cannot be created beside %s. "
            "Delete the one no host uses (aws iam delete-access-key --user-name %s --access-key-id %s) and run "
            "again." % (user, len(keys), ", ".join(k["id"] for k in keys), active_id, user, spare))


def rotate_key(config, via="module", check_mode=False, **options):
    """Rotate the offsite access key when due (or forced); returns the result, never the secret."""
    req = Request(config, **options)
    started = time.time()
    rotation = _KeyRotation(config, req, check_mode)
    doing = "rotate the offsite access key %s%s" % (req.active_id, " of IAM user %s" % req.user if req.user else "")
    try:
        with Operation(config, "rotate", doing, via, check_mode, keep=(ConfigError, LockError),
                       target=role_of(req.user) if req.user else None) as op, _one_at_a_time(req, check_mode):
            result = rotation.run(known=lambda user: op.audit(target=role_of(user)))  # a failure's audit line names it too
            op.audit(detail=_detail(req, result))
            if not check_mode:
                _record_metrics(config, result, op)
    except LifeboatError as exc:
        if not check_mode:
            _notify_failure(config, rotation.user or req.user or req.active_id, started, exc)
        raise
    result["warnings"] = rotation.warnings + op.warnings
    result["duration_seconds"] = op.duration
    return result


def _detail(req, result):
    parts = ["offsite access key of IAM user %s" % result["user"],
             "rotated to %s" % result["active_key_id"] if result["rotated"] else
             "would rotate %s" % req.active_id if result["due"] else "not due until %s" % result["next_due"],
             "consumers written: %s" % ", ".join(result["consumers"]) if result["rotated"] else None,
             "test passed: %s" % "; ".join(result["tests"]) if result["rotated"] else None,
             "retired %s" % result["retired_key_id"] if result["retired_key_id"] else None]
    return "; ".join(p for p in parts if p)


def _record_metrics(config, result, op):
    created = result.get("rotated_epoch")
    if created is None:
        return
    role = role_of(result["user"])
    try:
        values = {"lifeboat_credential_last_rotation_timestamp_seconds": created,
                  "lifeboat_credential_age_seconds": round(time.time() - created, 3)}
        _metrics.update(config["metrics_dir"], "credential_offsite_%s" % _SAFE.sub("_", result["user"]), None,
                        labels={"role": role}, values=values)
    except LifeboatError as exc:
        op.warnings.append(str(exc))


def _notify_failure(config, user, started, error):
    notifier = _notify.Notifier(config, "rotate-offsite-key:%s" % user, deadman=False)
    notifier.failure({"failed_step": "rotate-offsite-key", "duration_seconds": round(time.time() - started, 3)}, error)


def _encryption(section):
    """What a bucket policy may demand of every upload; never Object Lock, which would keep the probe."""
    extra = {}
    if section.get("server_side_encryption"):
        extra["ServerSideEncryption"] = section["server_side_encryption"]
    if section.get("sse_kms_key_id"):
        extra["SSEKMSKeyId"] = section["sse_kms_key_id"]
    return extra


class _KeyRotation:
    def __init__(self, config, req, check_mode):
        self.config, self.req, self.check_mode = config, req, check_mode
        self.now = time.time()
        self.warnings = []
        self.user = req.user
        self.iam = None

    def run(self, known=lambda user: None):
        req = self.req
        self.iam = _iam.Keys(req.target, req.admin, req.iam_endpoint_url)
        self.user = self.user or self.iam.caller()
        known(self.user)
        keys = self.iam.list(self.user)
        if not keys and not self.iam.exists(self.user):
            raise ConfigError("IAM user %s does not exist at %s" % (self.user, self.iam.endpoint))
        active = [k for k in keys if k["id"] == req.active_id]
        if not active:
            raise ConfigError("the configured offsite access_key %s is not a key of IAM user %s (its keys: %s); set "
                              "user to the key's owner" % (req.active_id, self.user, ", ".join(k["id"] for k in keys) or "none"))
        self.state = _state.load(req.state_dir, role_of(self.user))
        created = active[0]["created"]
        if created is None and self.state.get("active_key_id") == req.active_id:
            created = self.state.get("rotated_at")  # a store without CreateDate: as this host recorded it
        is_due = due(created, self.now, req.max_age, req.force)
        result = {"user": self.user, "due": is_due, "rotated": False, "active_key_id": req.active_id,
                  "retired_key_id": None, "consumers": [], "tests": [], "check_mode": self.check_mode,
                  "rotated_epoch": created}
        if is_due and len(keys) >= _iam.LIMIT:
            raise ConfigError(two_keys_refusal(self.user, keys, req.active_id))
        if is_due and self.check_mode:
            result.update(would_retire=req.active_id, consumers=[c["path"] for c in req.consumers])
        elif is_due:
            result.update(self._rotate())
        created = result["rotated_epoch"]
        result.update(changed=is_due, rotated_at=_iso(created), next_due=next_due(created, self.now, req.max_age))
        return result

    def _rotate(self):
        req = self.req
        new_id, secret = self.iam.create(self.user)
        undo = [lambda: self._delete_new(new_id)]
        try:
            tests = self._test(new_id, secret)
            written = self._write_consumers(new_id, secret, undo)
        except BaseException as exc:
            self._roll_back(undo, exc, new_id)
            raise
        # Retired ids (not secret) let role agent tell a deleted key in the inventory from a new one given there.
        retired = [k for k in self.state.get("retired_key_ids", []) if k != new_id][-9:] + [req.active_id]
        self.state.update(role=role_of(self.user), active_key_id=new_id, rotated_at=self.now, retired_key_ids=retired)
        try:
            _state.save(req.state_dir, self.state)
        except LifeboatError as exc:
            self.warnings.append("rotation state not saved: %s" % exc)
        try:
            self.iam.delete(self.user, req.active_id)
        except OffsiteError as exc:
            raise OffsiteError("the hosts use the new key %s now (written to %s), but the old key %s is still active: %s; "
                               "delete it (aws iam delete-access-key --user-name %s --access-key-id %s): the next "
                               "rotation refuses while the user has two keys"
                               % (new_id, ", ".join(written), req.active_id, exc, self.user, req.active_id))
        return {"rotated": True, "active_key_id": new_id, "retired_key_id": req.active_id, "consumers": written,
                "tests": tests, "rotated_epoch": self.now}

    def _delete_new(self, new_id):
        self.iam.delete(self.user, new_id)

    def _roll_back(self, undo, exc, new_id):
        """Consumer files back, the new key deleted; the error says whether the old key is in force untouched."""
        failures = []
        while undo:
            step = undo.pop()
            try:
                step()
            except LifeboatError as failure:
                failures.append(str(failure))
        if failures:
            note = "; rolling back failed too: %s (delete key %s of user %s by hand if it is still listed)" % (
                "; ".join(failures), new_id, self.user)
        else:
            note = "; the new key %s was deleted and the old key %s stays in force" % (new_id, self.req.active_id)
        if isinstance(exc, LifeboatError):
            exc.args = (str(exc) + note,)
        else:
            self.warnings.append(note.lstrip("; "))

    # -- test ------------------------------------------------------------------------------------------------------

    def _test(self, key_id, secret):
        """List, put, get and delete one probe object with a client that holds only the new key."""
        try:
            return self._probe(key_id, secret)
        except OffsiteError as exc:
            raise OffsiteError("testing the new key: %s" % exc)

    def _probe(self, key_id, secret):
        section = dict(self.req.target, access_key=key_id, secret_key=secret, session_token=None, aws_profile=None)
        remote = _s3.Remote(section)
        parts = [p for p in (section.get("prefix") or "").strip("/").split("/") if p]
        prefix = "/".join(parts) + "/" if parts else ""
        probe = "%s.lifeboat-key-probe-%s" % (prefix, secrets.token_hex(8))
        body = ("lifeboat key probe %s\n" % secrets.token_hex(16)).encode("ascii")
        self._until_valid(lambda: remote.list(prefix))
        try:
            remote.put(probe, body, _encryption(section))
            found, _meta = remote.get(probe)
            if found != body:
                raise OffsiteError("read back %s bytes from %s, not the %d it wrote"
                                   % ("no" if found is None else len(found), remote.url(probe), len(body)))
        finally:
            refused = self._delete_probe(remote, probe)
        if refused:
            raise OffsiteError("cannot delete %s: %s" % (remote.url(probe), refused))
        return ["list %s" % remote.url(prefix), "put, get (bytes compared) and delete %s" % remote.url(probe)]

    @staticmethod
    def _delete_probe(remote, probe):
        try:
            return remote.delete([(probe, None)]).get(probe)
        except OffsiteError as exc:
            return str(exc)

    @staticmethod
    def _until_valid(step):
        """A new key may be refused for a few seconds (AWS); anything but a refused credential fails at once."""
        deadline = time.monotonic() + KEY_WAIT
        while True:
            try:
                return step()
            except OffsiteError as exc:
                if getattr(exc, "code", None) not in _s3.CREDENTIALS or time.monotonic() >= deadline:
                    raise
            time.sleep(KEY_POLL)

    # -- finish: consumers -----------------------------------------------------------------------------------------

    def _write_consumers(self, key_id, secret, undo):
        written = []
        for consumer in self.req.consumers:
            previous = _consumers.read(consumer["path"])
            data = _consumers.render_offsite_key(consumer, previous, self.req.active_id, key_id, secret)
            undo.append(lambda c=consumer, p=previous: _consumers.restore(c, p))
            _consumers.write(consumer, data)
            found = _consumers.offsite_keys_of(consumer, _consumers.read(consumer["path"]))
            if (key_id, secret) not in found or any(k == self.req.active_id for k, _s in found):
                raise OffsiteError("consumer %s does not hold the new key after writing it" % consumer["path"])
            written.append(consumer["path"])
        return written
