# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotating a database password: create, set, test, finish (AWS Secrets Manager's four steps).

- create: a new password from ``secrets`` (43 characters), held in memory only;
- set: only its SCRAM-SHA-256 verifier, computed here, is sent, in a session that turns statement logging and
  pg_stat_statements' utility tracking off where the admin may (see _postgres/roles.QUIET);
- test: log in with it over the consumers' path (host, port, database; then through each written file) and run the
  checks: it is the login it should be, it holds the group's privileges (alternate), every ``test`` SQL check is
  true and, for the backup user, what a backup does (pg_export_snapshot, read every table of each profile);
- finish: every consumer file is rewritten atomically, then the old credential is retired.

A failure before finish leaves the old credential in force: the new login is disabled again (alternate), or the
old verifier and the consumer files are put back (in_place), and the error says what failed.

``alternate``: logins ``<role>_a`` and ``<role>_b``, members of the NOLOGIN group ``<role>`` that holds the
privileges; the inactive one gets the new password, the consumers switch to it, and the old login keeps working
for ``grace``. No daemon waits for grace: the rotation state (_store/rotation_state) records when it ends and
every later run on this host (a rotation, or ``lifeboat rotate-password`` from cron) disables the logins whose
grace has passed; a zero grace disables at once. ``in_place``: one login; the profiles' credential gates are held
(no backup runs or starts) while the password and the passfile change and the test runs.

``revoke`` (a compromise): every login of the role is disabled and its sessions terminated at once, then it rotates.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import re
import secrets
import time

from .._config.schema import get_profile, parse_duration
from .._errors import ConfigError, DatabaseError, LifeboatError, LockError
from .._postgres import roles as _roles
from .._postgres import scram as _scram
from .._postgres import session as _pg
from .._postgres import tables as _tables
from .._report import metrics as _metrics
from .._report import notify as _notify
from .._store import catalog as _catalog
from .._store import consumers as _consumers
from .._store import gate as _gate
from .._store import rotation_state as _state
from .._store.files import ProfileLock, ensure_dir
from .operation import Operation

STRATEGIES = ("alternate", "in_place")
# The variables of an env consumer unless it names others: what libpq and most clients read.
ENV_KEYS = {"key": "PGPASSWORD", "user_key": "PGUSER"}
DEFAULT_MAX_AGE = "30d"
DEFAULT_GRACE = "1h"
PASSWORD_BYTES = 32  # token_urlsafe: 43 characters of [A-Za-z0-9_-]
LOCK_WAIT = 600
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,60}$")  # room for the _a/_b suffix within NAMEDATALEN


class Request:
    """The validated options of one rotation."""

    DEFAULTS = {"role": None, "strategy": "alternate", "max_age": DEFAULT_MAX_AGE, "force": False, "revoke": False,
                "consumers": (), "tests": (), "grace": DEFAULT_GRACE, "db": None, "profiles": (), "state_dir": None,
                "lock_wait": LOCK_WAIT}

    def __init__(self, config, **options):
        unknown = sorted(set(options) - set(self.DEFAULTS))
        if unknown:
            raise TypeError("unknown rotation options: %s" % ", ".join(unknown))
        option = dict(self.DEFAULTS, **options)
        role, strategy, consumers, tests, profiles = (option[k] for k in ("role", "strategy", "consumers", "tests", "profiles"))
        self.role = role or config["connection"].get("login_user")
        if not self.role or not ROLE_NAME.match(self.role):
            raise ConfigError("role: %r is not a role name lifeboat rotates (letters, digits, _; at most 61)" % (self.role,))
        if strategy not in STRATEGIES:
            raise ConfigError("strategy: must be one of %s, got %r" % (", ".join(STRATEGIES), strategy))
        self.strategy = strategy
        self.max_age = _seconds("max_age", option["max_age"])
        self.grace = _seconds("grace", option["grace"])
        self.force, self.revoke = bool(option["force"]), bool(option["revoke"])
        self.consumers = [_consumers.normalize(c, ENV_KEYS) for c in consumers or ()]
        self.tests = list(tests or ())
        self.db = option["db"] or config["connection"].get("maintenance_db") or "postgres"
        self.profiles = [(name, get_profile(config, name)) for name in profiles or ()]
        self.state_dir = option["state_dir"] or "%s/.rotation" % config["backup_root"].rstrip("/")
        self.lock_wait = option["lock_wait"]
        if strategy == "alternate":
            self.logins = ["%s_a" % self.role, "%s_b" % self.role]
        else:
            self.logins = [self.role]


def _seconds(option, text):
    seconds = parse_duration(text)
    if seconds is None:
        raise ConfigError("%s: must be a duration such as 30d, 12h or 0s, got %r" % (option, text))
    return seconds


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def rotate(config, via="module", check_mode=False, **options):
    """Rotate when due (or forced, or revoked); returns the result, never the password."""
    req = Request(config, **options)
    started = time.time()
    try:
        with Operation(config, "rotate", "rotate the password of role %s" % req.role, via, check_mode,
                       keep=(ConfigError, LockError), target=req.role) as op, _one_at_a_time(req, check_mode):
            result = _Rotation(config, req, check_mode).run()
            op.audit(detail=_detail(req, result))
            if not check_mode:
                _record_metrics(config, req.role, result, op)
    except LifeboatError as exc:
        if not check_mode:
            _notify_failure(config, req.role, started, exc)
        raise
    result["warnings"] = result.get("warnings", []) + op.warnings
    result["duration_seconds"] = op.duration
    return result


@contextlib.contextmanager
def _one_at_a_time(req, check_mode):
    """Two rotations on one host would fight over the same logins and state: the second stops at once."""
    if check_mode:
        yield
        return
    try:
        with ProfileLock(ensure_dir(req.state_dir), "credential-rotation"):
            yield
    except LockError as exc:
        if "another run" not in str(exc):
            raise
        raise LockError("another credential rotation is running on this host (state in %s); not starting a second one"
                        % req.state_dir)


def _detail(req, result):
    parts = ["strategy %s" % req.strategy, "revoke" if req.revoke else None,
             "rotated to %s" % result["active_login"] if result["rotated"] else "not due until %s" % result["next_due"],
             "consumers written: %s" % (", ".join(result["consumers"]) or "none") if result["rotated"] else None,
             "test passed: %s" % "; ".join(result["tests"]) if result["rotated"] else None,
             "retired %s" % result["retired_login"] if result["retired_login"] else None]
    return "; ".join(p for p in parts if p)


def _record_metrics(config, role, result, op):
    rotated = result.get("rotated_epoch")
    if rotated is None:
        return
    try:
        _metrics.update(config["metrics_dir"], "credential_%s" % role, None, labels={"role": role}, values={
            "lifeboat_credential_last_rotation_timestamp_seconds": rotated,
            "lifeboat_credential_age_seconds": round(time.time() - rotated, 3),
        })
    except LifeboatError as exc:
        op.warnings.append(str(exc))


def _notify_failure(config, role, started, error):
    notifier = _notify.Notifier(config, "rotate-password:%s" % role, deadman=False)
    report = {"failed_step": "rotate", "duration_seconds": round(time.time() - started, 3)}
    notifier.failure(report, error)


class _Rotation:
    def __init__(self, config, req, check_mode):
        self.config, self.req, self.check_mode = config, req, check_mode
        self.state = _state.load(req.state_dir, req.role)
        self.now = time.time()
        self.warnings = []
        self.undo = []  # steps run newest first when a step fails
        self.setter = None
        self.disabled = set()  # logins revoke disabled

    # -- the run ---------------------------------------------------------------------------------------------------

    def run(self):
        req = self.req
        with _pg.Session(self.config["connection"], req.db) as admin_session:
            self.admin_session = admin_session
            self.admin = admin_session.connect()
            try:
                return self._run()
            finally:
                if self.setter is not None:
                    self.setter.close()
                self.admin.close()

    def _run(self):
        req = self.req
        retired = self._retire_expired()
        rotated_at = self.state.get("rotated_at")
        due = req.force or req.revoke or rotated_at is None or self.now - rotated_at >= req.max_age
        result = {"role": req.role, "strategy": req.strategy, "due": due, "rotated": False, "consumers": [],
                  "tests": [], "retired_login": retired, "active_login": self.state.get("active_login"),
                  "check_mode": self.check_mode}
        if due:
            if self.check_mode:
                result.update(self._predict())
            else:
                result.update(self._rotate())
        rotated_at = result.get("rotated_epoch", rotated_at)
        result.update(changed=bool(due or retired), rotated_at=_iso(rotated_at), rotated_epoch=rotated_at,
                      next_due=_iso((rotated_at or self.now) + req.max_age) if rotated_at else _iso(self.now),
                      pending_retirement=self._pending(), warnings=self.warnings)
        return result

    def _pending(self):
        return [{"login": r["login"], "after": _iso(r["retire_after"])} for r in self.state["retiring"]]

    def _predict(self):
        active, target = self._logins(create=False)
        return {"active_login": target, "would_retire": active if self.req.strategy == "alternate" else None,
                "consumers": [c["path"] for c in self.req.consumers]}

    def _rotate(self):
        req = self.req
        active, target = self._logins(create=True)
        with self._gates():
            if req.revoke:
                self._revoke()
            password = secrets.token_urlsafe(PASSWORD_BYTES)
            try:
                self._set(target, password)
                written = self._write_consumers(target, password)
                tests = self._test(target, password)
            except BaseException:
                self._roll_back()
                raise
        self.state.update(role=req.role, strategy=req.strategy, active_login=target, rotated_at=self.now,
                          logins=req.logins, consumers=[c["path"] for c in req.consumers])
        retired = None
        if req.strategy == "alternate" and active and active != target:
            if req.grace == 0 or req.revoke:
                _roles.disable(self.admin, active)
                retired = active
            else:
                self.state["retiring"] = [r for r in self.state["retiring"] if r["login"] != active] + [
                    {"login": active, "retire_after": self.now + req.grace}]
        _state.save(req.state_dir, self.state)
        result = {"rotated": True, "active_login": target, "consumers": written, "tests": tests, "rotated_epoch": self.now}
        if retired:
            result["retired_login"] = retired
        return result

    # -- which login -----------------------------------------------------------------------------------------------

    def _logins(self, create):
        """(the login in use now or None, the login that gets the new password)."""
        req = self.req
        if req.strategy == "in_place":
            facts = _roles.facts(self.admin, req.role)
            if not facts["exists"] or not facts["login"]:
                raise ConfigError("role %s does not exist or cannot log in; in_place rotates an existing login" % req.role)
            return req.role, req.role
        group = _roles.facts(self.admin, req.role)
        if group["exists"] and group["login"]:
            raise ConfigError("role %s can log in; strategy alternate needs it as the NOLOGIN group holding the privileges "
                              "(move its clients to %s_a/%s_b, then ALTER ROLE %s NOLOGIN) or use strategy in_place"
                              % (req.role, req.role, req.role, req.role))
        if create:
            self._ensure_alternates(group["exists"])
        active = self._active()
        target = [login for login in req.logins if login != active][0]
        waiting = [r for r in self.state["retiring"] if r["login"] == target]
        if waiting and not req.revoke:
            raise ConfigError("login %s still serves clients until %s (grace of the last rotation); rotate again after "
                              "that, or use revoke after a compromise" % (target, _iso(waiting[0]["retire_after"])))
        return active, target

    def _active(self):
        """The login consumers use now: as the consumer files say, else as recorded, else one that can log in."""
        for consumer in self.req.consumers:  # what clients read wins over our record (a lost or stale state file)
            login = _consumers.credential_of(consumer, _consumers.read(consumer["path"]))[0]
            if login in self.req.logins:
                return login
        recorded = self.state.get("active_login")
        if recorded in self.req.logins:
            return recorded
        for login in self.req.logins:
            if _roles.facts(self.admin, login)["login"]:
                return login
        return None

    def _ensure_alternates(self, group_exists):
        req = self.req
        group = _pg.quote_ident(req.role)
        if not group_exists:
            _roles.run(self.admin, "CREATE ROLE %s NOLOGIN" % group)
            self.warnings.append("created the NOLOGIN group role %s: grant it the privileges its clients need" % req.role)
        for login in req.logins:
            if not _roles.facts(self.admin, login)["exists"]:
                _roles.run(self.admin, "CREATE ROLE %s NOLOGIN INHERIT IN ROLE %s" % (_pg.quote_ident(login), group))
            elif not _roles.is_member(self.admin, login, req.role):
                _roles.run(self.admin, "GRANT %s TO %s" % (group, _pg.quote_ident(login)))

    # -- create and set --------------------------------------------------------------------------------------------

    def _set(self, login, password):
        facts = _roles.facts(self.admin, login)
        previous = facts["verifier"]
        if self.req.strategy == "in_place" and not self.req.revoke:
            previous = previous or self._old_verifier()
        self.undo.append(lambda: self._unset(login, previous, facts["login"]))
        # Only alternate switches LOGIN: a role may change its own password but not its attributes (self-rotation).
        enable = True if self.req.strategy == "alternate" or login in self.disabled else None
        _roles.set_verifier(self._setter(), login, _scram.verifier(password), login_too=enable)

    def _setter(self):
        """The quiet session that sets and, on failure, puts back (opened before: the admin may be the role itself)."""
        if self.setter is None:
            self.setter = self.admin_session.connect()
            refused = _roles.quiet(self.setter)
            if refused:
                self.warnings.append("admin may not set %s: the server may log the new verifier (never the password)"
                                     % ", ".join(refused))
        return self.setter

    def _old_verifier(self):
        """For in_place without access to pg_authid: the old password from a consumer, as a fresh verifier."""
        sources = [_consumers.credential_of(c, _consumers.read(c["path"]), self.req.role) for c in self.req.consumers]
        sources.append((self.config["connection"].get("login_user"), self.config["connection"].get("login_password")))
        for login, password in sources:
            if login in (None, self.req.role) and password:
                try:
                    return _scram.verifier(password)
                except ValueError:
                    continue
        raise ConfigError("cannot read the current password of role %s (pg_authid needs a superuser, and no consumer "
                          "holds it), so a failed test could not put it back; rotate as a superuser or use strategy "
                          "alternate" % self.req.role)

    def _unset(self, login, previous, could_login):
        """Put the login back as it was: its old verifier (or none) and its old LOGIN."""
        handle = self._setter()
        if previous:
            _roles.set_verifier(handle, login, previous, login_too=could_login if self.req.strategy == "alternate" else None)
        else:
            _roles.run(handle, "ALTER ROLE %s %s PASSWORD NULL" % (_pg.quote_ident(login), "LOGIN" if could_login else "NOLOGIN"))

    def _roll_back(self):
        while self.undo:
            step = self.undo.pop()
            try:
                step()
            except LifeboatError as exc:
                self.warnings.append("rollback step failed: %s" % exc)

    # -- finish: consumers -----------------------------------------------------------------------------------------

    def _write_consumers(self, login, password):
        written = []
        replace = [login] + ([self.req.role] if self.req.strategy == "alternate" else [])
        for consumer in self.req.consumers:
            previous = _consumers.read(consumer["path"])
            data = _consumers.render(consumer, previous, login, password, replace)
            self.undo.append(lambda c=consumer, p=previous: _consumers.restore(c, p))
            _consumers.write(consumer, data)
            written.append(consumer["path"])
        return written

    # -- test ------------------------------------------------------------------------------------------------------

    def _client(self, login, password=None, passfile=None):
        base = self.config["connection"]
        connection = dict((k, base.get(k)) for k in ("login_host", "login_port", "login_unix_socket", "connect_timeout"))
        connection.update(login_user=login, login_password=password, passfile=passfile)
        return _pg.Session(connection, self.req.db)

    def _test(self, login, password):
        """Everything the new credential must be able to do; raises naming the first thing it cannot."""
        passed = []
        with self._client(login, password) as session:
            self._checks(session, login)
            passed.append("login as %s" % login)
            if self.req.tests:
                passed.append("%d SQL checks" % len(self.req.tests))
            for name, profile in self.req.profiles:
                count = self._backup_probe(session.for_db(profile["db"]), profile)
                passed.append("backup probe of profile %s (%d tables read)" % (name, count))
        for consumer in self.req.consumers:
            self._through(consumer, login, password)
            passed.append("login through %s" % consumer["path"])
        return passed

    def _checks(self, session, login):
        handle = session.connect()
        try:
            user = _pg.query(handle, "SELECT current_user")[0][0]
            if user != login:
                raise DatabaseError("the new credential logged in as %s, not %s" % (user, login))
            if self.req.strategy == "alternate" and not _roles.is_member(handle, login, self.req.role):
                raise DatabaseError("login %s is not a member of group %s" % (login, self.req.role))
            for check in self.req.tests:
                try:
                    ok = _pg.query(handle, "SELECT (%s)::boolean" % check)[0][0]
                except DatabaseError as exc:
                    raise DatabaseError("test %r failed for %s: %s" % (check, login, exc))
                if not ok:
                    raise DatabaseError("test %r is false for %s" % (check, login))
        finally:
            handle.close()

    def _backup_probe(self, session, profile):
        """What a backup needs: a snapshot to export and every table of the profile readable in it."""
        handle = session.connect(autocommit=False)
        try:
            handle.set_session(isolation_level="REPEATABLE READ", readonly=True)
            _pg.query(handle, "SELECT pg_export_snapshot()")
            leaves = _tables.select(handle, profile).leaves
            for table in leaves:
                try:
                    _pg.query(handle, "SELECT 1 FROM %s LIMIT 1" % table.qualified)
                except DatabaseError as exc:
                    raise DatabaseError("the backup user cannot read table %s of database %s: %s" % (table.key, profile["db"], exc))
            handle.rollback()
            return len(leaves)
        finally:
            handle.close()

    def _through(self, consumer, login, password):
        """Read the file back as its client would and log in with what it holds."""
        found = _consumers.credential_of(consumer, _consumers.read(consumer["path"]))
        if found != (login, password):
            raise DatabaseError("consumer %s does not hold the new credential after writing it" % consumer["path"])
        if consumer["type"] == "passfile":
            with self._client(login, passfile=consumer["path"]) as session:
                session.connect().close()

    # -- retire ----------------------------------------------------------------------------------------------------

    def _retire_expired(self):
        """Disable the logins whose grace has passed (the enforcement of grace); returns the last one."""
        expired = [r for r in self.state["retiring"] if r["retire_after"] <= self.now]
        if not expired:
            return None
        if not self.check_mode:
            for entry in expired:
                if entry["login"] != self.state.get("active_login"):
                    _roles.disable(self.admin, entry["login"])
            self.state["retiring"] = [r for r in self.state["retiring"] if r not in expired]
            _state.save(self.req.state_dir, self.state)
        return expired[-1]["login"]

    def _revoke(self):
        for login in self.req.logins:
            if _roles.facts(self.admin, login)["exists"] and login != self.admin_login():
                _roles.disable(self.admin, login)
                self.disabled.add(login)
        ended = _roles.terminate(self.admin, self.req.logins)
        self.state["retiring"] = []
        self.warnings.append("revoked: every login of %s disabled, %d sessions terminated" % (self.req.role, ended))

    def admin_login(self):
        return _pg.query(self.admin, "SELECT session_user")[0][0]

    # -- the backups' gates (in_place) -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _gates(self):
        with contextlib.ExitStack() as stack:
            if self.req.strategy == "in_place":
                root = ensure_dir(self.config["backup_root"])
                for name, _profile in self.req.profiles:
                    directory = ensure_dir(_catalog.profile_dir(root, name))
                    stack.enter_context(_gate.closed(directory, name, self.req.lock_wait))
            yield
