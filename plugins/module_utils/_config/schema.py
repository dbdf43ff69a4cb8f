# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one configuration schema, validated with one clear message per problem.

``/etc/lifeboat/lifeboat.yml`` and the modules' options both end up here:
modules build the same dictionary from their parameters, so a cron run and
an AWX run are validated by the same rules. The modules' argument specs,
their doc fragments and the agent role's ``meta/argument_specs.yml`` mirror
this schema (tests/unit/test_one_schema.py and test_role_argument_specs.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

from .._errors import ConfigError

PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
AGE_RECIPIENT = re.compile(r"^(age1[0-9a-z]{58}|ssh-(ed25519|rsa) \S+.*)$")
DURATION = re.compile(r"^(\d+)([smhdwy])$")
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Beyond these, a number stops meaning anything and starts breaking arithmetic (float, datetime, thread timers).
DURATION_MAX = 100 * DURATION_SECONDS["y"]
TIMEOUT_MAX = 30 * DURATION_SECONDS["d"]
LOCK_TIMEOUT_MAX = 2147483  # PostgreSQL's lock_timeout is an int of milliseconds
DEFAULT_CONFIG_PATH = "/etc/lifeboat/lifeboat.yml"
DEFAULT_BACKUP_ROOT = "/var/backups/lifeboat"


class Field:
    """One key of a section: its type, default and an optional extra check."""

    def __init__(self, kind, default=None, required=False, check=None, fields=None, choices=None, doc=""):
        self.kind = kind  # str, int, bool, list, dict, section, profiles, any
        self.default = default
        self.required = required
        self.check = check
        self.fields = fields
        self.choices = choices
        self.doc = doc


def _int_range(low, high=None, cap=None):
    """``high``: a real limit, always named; ``cap``: a sanity bound only named to whoever exceeds it."""
    def check(value):
        if value < low or (high is not None and value > high):
            bound = "between %d and %d" % (low, high) if high is not None else "at least %d" % low
            return "must be %s, got %d" % (bound, value)
        if cap is not None and value > cap:
            return "must be between %d and %d, got %.40s" % (low, cap, value)
        return None

    return check


def _recipients(values):
    for value in values:
        if not isinstance(value, str) or not AGE_RECIPIENT.match(value.strip()):
            return "is not an age public key (age1...) or SSH public key: %r" % (value,)
    return None


def _table_names(values):
    for value in values:
        if not isinstance(value, str) or not value.strip():
            return "must be a list of table names, got %r" % (value,)
    return None


def _freshness(mapping):
    for table, column in mapping.items():
        if not isinstance(column, str) or not column.strip():
            return "column for table %r must be a non-empty string" % (table,)
    return None


def parse_duration(text):
    """``"36h"`` -> 129600 seconds; None when ``text`` is not a duration of at most 100 years."""
    match = DURATION.match(str(text).strip())
    if not match or len(match.group(1)) > 12:
        return None
    seconds = int(match.group(1)) * DURATION_SECONDS[match.group(2)]
    return seconds if seconds <= DURATION_MAX else None


def _duration(value):
    if parse_duration(value) is not None:
        return None
    if DURATION.match(str(value).strip()):
        return "must be at most 100y, got %.40s" % (value,)
    return "must be a duration such as 36h, 7d or 1y, got %r" % (value,)


SSL_MODES = ("allow", "disable", "prefer", "require", "verify-ca", "verify-full")

# connect_params keys: libpq keywords the client programs can also be given, through these environment
# variables (a cron run's pg_dump must connect exactly as psycopg2 does). Keys with an option of their own, and
# password keywords (never in a configuration value that may be logged), are refused with that option's name.
LIBPQ_ENVIRONMENT = {
    "channel_binding": "PGCHANNELBINDING", "gssencmode": "PGGSSENCMODE", "gsslib": "PGGSSLIB",
    "krbsrvname": "PGKRBSRVNAME", "options": "PGOPTIONS", "requirepeer": "PGREQUIREPEER",
    "service": "PGSERVICE", "sslcompression": "PGSSLCOMPRESSION", "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI", "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "hostaddr": "PGHOSTADDR",
}
OWN_OPTION = {
    "host": "login_host", "port": "login_port", "user": "login_user", "password": "login_password",
    "passfile": "passfile", "dbname": "the module's db or the profile's db", "connect_timeout": "connect_timeout",
    "sslmode": "ssl_mode", "sslrootcert": "ca_cert", "sslcert": "ssl_cert", "sslkey": "ssl_key",
    "sslpassword": "an unencrypted ssl_key readable only by the backup user",
}


def _connect_params(mapping):
    for key, value in mapping.items():
        if key in OWN_OPTION:
            return "%r: use %s instead" % (key, OWN_OPTION[key])
        if key not in LIBPQ_ENVIRONMENT:
            return "%r is not a libpq keyword pg_dump and pg_restore can be given (known: %s)" % (
                key, ", ".join(sorted(LIBPQ_ENVIRONMENT)))
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            return "%r must be a string or a number, got %s" % (key, _type_name(value))
    return None


CONNECTION_FIELDS = {
    "login_host": Field("str", doc="host name, IP address or socket directory"),
    "login_port": Field("int", 5432, check=_int_range(1, 65535)),
    "login_user": Field("str"),
    "login_password": Field("str", doc="prefer passfile on hosts"),
    "login_unix_socket": Field("str", doc="socket directory; wins over login_host"),
    "passfile": Field("str", doc="a 0600 libpq password file"),
    "connect_timeout": Field("int", 10, check=_int_range(1, 3600)),
    "maintenance_db": Field("str", "postgres", doc="database used to create and drop databases"),
    "pg_bin_dir": Field("str", doc="directory of pg_dump/pg_restore; default: the server's major version"),
    # TLS and the rest as community.postgresql names them (libpq's sslmode, sslrootcert, sslcert, sslkey)
    "ssl_mode": Field("str", "prefer", choices=SSL_MODES),
    "ca_cert": Field("str", doc="CA certificate(s) the server's certificate must chain to (verify-ca, verify-full)"),
    "ssl_cert": Field("str", doc="client certificate file"),
    "ssl_key": Field("str", doc="client private key file (0600, unencrypted)"),
    "connect_params": Field("dict", {}, check=_connect_params, doc="further libpq keywords, e.g. target_session_attrs"),
    "session_role": Field("str", doc="role to SET ROLE to after connecting; the login role must be a member"),
}

ENCRYPTION_FIELDS = {
    "mode": Field("str", "age", choices=("age", "none")),
    "recipients": Field("list", [], check=_recipients),
}

RETENTION_FIELDS = {
    "keep_last": Field("int", check=_int_range(0)),
    "keep_hourly": Field("int", check=_int_range(0)),
    "keep_daily": Field("int", check=_int_range(0)),
    "keep_weekly": Field("int", check=_int_range(0)),
    "keep_monthly": Field("int", check=_int_range(0)),
    "keep_yearly": Field("int", check=_int_range(0)),
    "keep_within": Field("str", check=_duration),
}


def _url(value):
    return None if re.match(r"^https?://[^\s/]+", value) else "must be an http:// or https:// URL"


NOTIFY_FIELDS = {
    "webhook_url": Field("str", check=_url, doc="Slack/Discord-compatible or JSON webhook; treat as a secret"),
    "webhook_format": Field("str", "json", choices=("slack", "discord", "json")),
    "on_success": Field("bool", False, doc="also notify when a run succeeds"),
    "deadman_url": Field("str", check=_url, doc="healthchecks-style ping URL (/start, plain, /fail)"),
    "timeout": Field("int", 5, check=_int_range(1, 60), doc="seconds per delivery attempt"),
}

OFFSITE_FIELDS = {
    "enabled": Field("bool", True),
    "bucket": Field("str"),
    "prefix": Field("str", "lifeboat"),
    "endpoint_url": Field("str", check=_url),
    "region": Field("str"),
    "addressing_style": Field("str", "auto", choices=("auto", "path", "virtual")),
    "storage_class": Field("str"),
    "server_side_encryption": Field("str", choices=("AES256", "aws:kms")),
    "sse_kms_key_id": Field("str"),
    "access_key": Field("str"),
    "secret_key": Field("str"),
    "session_token": Field("str"),
    "aws_profile": Field("str", doc="AWS named profile (~/.aws/config) instead of access_key and secret_key"),
    "validate_certs": Field("bool", True, doc="check the endpoint's TLS certificate"),
    "aws_ca_bundle": Field("str", doc="CA bundle file for the endpoint's certificate, e.g. a private CA"),
    "checksum_mode": Field("str", "when_supported", choices=("when_supported", "when_required")),
    "object_lock_mode": Field("str", choices=("GOVERNANCE", "COMPLIANCE")),
    "object_lock_days": Field("int", check=_int_range(1, cap=36500)),
    "part_size_mb": Field("int", 16, check=_int_range(5, 5120), doc="multipart part size: memory used per upload"),
    "retention": Field("section", fields=RETENTION_FIELDS, doc="remote policy; default: the profile's"),
}


def _drill_checks(checks):
    names = set()
    for check in checks:
        if not isinstance(check, dict) or sorted(check) != ["name", "sql"]:
            return "each check is a mapping with exactly name and sql, got %r" % (check,)
        if not all(isinstance(check[k], str) and check[k].strip() for k in ("name", "sql")):
            return "check name and sql must be non-empty strings, got %r" % (check,)
        if check["name"] in names:
            return "check name %r is used twice" % check["name"]
        names.add(check["name"])
    return None


# A disaster-recovery drill of one profile (_actions/drill.py): objectives, the profile's own checks, the cadence.
DRILL_FIELDS = {
    "rto_objective": Field("str", check=_duration, doc="longest acceptable time from drill start to checks passed"),
    "rpo_objective": Field("str", check=_duration, doc="largest acceptable age of the restored backup at drill start"),
    "checks": Field("list", [], check=_drill_checks, doc="[{name, sql}]: each SQL returns one boolean, true passes"),
    "schedule": Field("str", "0 4 1 */3 *", doc="cron expression for the agent role's drill entry (quarterly)"),
    "source": Field("str", "offsite", choices=("offsite", "local"), doc="where the drill reads the backup"),
    "source_host": Field("str", doc="host whose backups are drilled; default this host"),
    "pick": Field("str", "newest", choices=("newest", "random"), doc="newest, or random within the retention window"),
    "jobs": Field("int", 1, check=_int_range(1, 64), doc="pg_restore jobs"),
}


def _without_defaults(fields):
    """Per-profile overrides: unset keys stay None so the top-level value shows through."""
    return dict((name, Field(f.kind, None, False, f.check, f.fields and _without_defaults(f.fields), f.choices, f.doc))
                for name, f in fields.items())


PROFILE_FIELDS = {
    "db": Field("str", required=True, check=lambda v: None if v.strip() else "must not be empty", doc="database to dump"),
    "tables": Field("list", [], check=_table_names, doc="dump only these tables (and their partitions)"),
    "exclude_tables": Field("list", [], check=_table_names),
    # zstd's own default, tuned for pg_dump archives in _codec; level 2 is faster and 0.8 % larger (README, Performance)
    "compression_level": Field("int", 3, check=_int_range(1, 19)),
    "compression_threads": Field("int", 0, check=_int_range(0, 256), doc="zstd -T; 0 means one per core, at most 4"),
    "freshness_columns": Field("dict", {}, check=_freshness, doc="table -> timestamp column"),
    "min_tables": Field("int", 1, check=_int_range(0), doc="fail when the dump holds fewer tables"),
    "globals": Field("bool", True, doc="dump roles and tablespaces alongside"),
    # pg_dump waits for its table locks for ever by default; a run stuck behind a long ALTER TABLE should fail clearly.
    "lock_wait_timeout": Field("int", 600, check=_int_range(0, cap=LOCK_TIMEOUT_MAX),
                               doc="seconds to wait for a table another session holds locked, then fail; 0 waits for ever"),
    # A step that hangs (a stalled network disk, a server that stopped answering) would hold the run and its lock.
    "backup_timeout": Field("int", 0, check=_int_range(0, cap=TIMEOUT_MAX),
                            doc="seconds a backup may take before its pipeline is stopped and it fails; 0 means no limit"),
    "retention": Field("section", fields=RETENTION_FIELDS),
    "schedule": Field("str", doc="cron expression or @hourly/@daily (used by the agent role)"),
    "offsite": Field("section", fields=_without_defaults(OFFSITE_FIELDS), doc="overrides of the top-level offsite settings"),
    "notify": Field("section", fields=_without_defaults(NOTIFY_FIELDS), doc="overrides of the top-level notifications"),
    "drill": Field("section", fields=DRILL_FIELDS, doc="disaster-recovery drill of this profile"),
    # Costs a second look at each row beside pg_dump (about 9x the bare count); drills compare it after restore.
    "content_sample": Field("bool", True, doc="record the content sample drills compare (one row in 16 by key hash)"),
}

TOP_FIELDS = {
    "connection": Field("section", fields=CONNECTION_FIELDS),
    "backup_root": Field("str", DEFAULT_BACKUP_ROOT),
    "log_dir": Field("str", doc="JSON-lines logs and the audit log; default <backup_root>/.log"),
    "metrics_dir": Field("str", doc="Prometheus textfile directory; default <backup_root>/.metrics"),
    "host": Field("str", doc="name recorded in manifests; default the host name"),
    "encryption": Field("section", fields=ENCRYPTION_FIELDS),
    "profiles": Field("profiles", {}),
    "offsite": Field("section", fields=OFFSITE_FIELDS),
    "notify": Field("section", fields=NOTIFY_FIELDS),
    "scratch": Field("section", fields=CONNECTION_FIELDS, doc="server for restore-level verification; default: connection"),
    "report_dir": Field("str", "/var/lib/lifeboat/drills", doc="where drill reports are written"),
}

_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "a mapping"}


def _type_name(value):
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _validate_value(field, value, where):
    if field.kind == "any":
        return value
    if field.kind == "section":
        return validate_section(value if value is not None else {}, field.fields, where)
    if field.kind == "profiles":
        return _validate_profiles(value if value is not None else {}, where)
    expected = _TYPES[field.kind]
    if field.kind == "int" and isinstance(value, str) and re.match(r"^-?\d+$", value.strip()):
        value = int(value)  # YAML and Jinja sometimes hand numbers over as strings
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError("%s: must be %s, got %s" % (where, _TYPE_NAMES[expected], _type_name(value)))
    if field.choices and value not in field.choices:
        raise ConfigError("%s: must be one of %s, got %r" % (where, ", ".join(field.choices), value))
    if field.check:
        problem = field.check(value)
        if problem:
            raise ConfigError("%s: %s" % (where, problem))
    return value


def validate_section(data, fields, where):
    """Return ``data`` with defaults filled in; raise ConfigError on the first problem."""
    if not isinstance(data, dict):
        raise ConfigError("%s: must be a mapping, got %s" % (where or "configuration", _type_name(data)))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            "%s: unknown key %r (expected one of: %s)" % (where or "configuration", unknown[0], ", ".join(sorted(fields)))
        )
    result = {}
    for name, field in fields.items():
        path = "%s.%s" % (where, name) if where else name
        value = data.get(name)
        if value is None:
            if field.required:
                raise ConfigError("%s: is required" % path)
            if field.kind not in ("section", "profiles"):
                result[name] = _copy(field.default)
                continue
        result[name] = _validate_value(field, value, path)
    return result


def _copy(value):
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def check_profile_name(name):
    if not isinstance(name, str) or not PROFILE_NAME.match(name):
        raise ConfigError(
            "bad profile name %r: use 1-63 letters, digits, '-' or '_', starting with a letter or digit" % (name,)
        )
    return name


def _validate_profiles(profiles, where):
    if not isinstance(profiles, dict):
        raise ConfigError("%s: must be a mapping of profile name to profile" % where)
    result = {}
    for name, profile in profiles.items():
        check_profile_name(name)
        result[name] = validate_section(profile if profile is not None else {}, PROFILE_FIELDS, "%s.%s" % (where, name))
    return result


def validate_config(data):
    """Validate a whole configuration (the contents of lifeboat.yml)."""
    config = validate_section(data if data is not None else {}, TOP_FIELDS, "")
    config["host"] = config["host"] or socket.gethostname()
    config["log_dir"] = config["log_dir"] or "%s/.log" % config["backup_root"].rstrip("/")
    config["metrics_dir"] = config["metrics_dir"] or "%s/.metrics" % config["backup_root"].rstrip("/")
    return config


def require_encryption(config):
    """Missing recipients is an error unless ``none`` was chosen explicitly."""
    encryption = config["encryption"]
    if encryption["mode"] == "age" and not encryption["recipients"]:
        raise ConfigError(
            "encryption.recipients: no age recipients configured; add public keys (age1...) "
            "or set encryption mode 'none' explicitly to store unencrypted backups"
        )
    return encryption


def get_profile(config, name):
    check_profile_name(name)
    try:
        return config["profiles"][name]
    except KeyError:
        known = ", ".join(sorted(config["profiles"])) or "none configured"
        raise ConfigError("unknown profile %r (known profiles: %s)" % (name, known))


def effective_section(config, profile_name, section):
    """A top-level section (offsite, notify) with the profile's overrides applied."""
    merged = dict(config[section])
    overrides = config["profiles"][profile_name][section]
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged[key] = dict(merged.get(key) or {}, **dict((k, v) for k, v in value.items() if v is not None))
        elif value is not None:
            merged[key] = value
    return merged


def load_config_file(path):
    """Read and validate a YAML configuration file."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - hosts install python3-yaml
        raise ConfigError("PyYAML is required to read %s (install python3-yaml)" % path)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError("configuration file %s does not exist" % path)
    except PermissionError:
        raise ConfigError("configuration file %s is not readable by this user" % path)
    except yaml.YAMLError as exc:
        raise ConfigError("configuration file %s is not valid YAML: %s" % (path, exc))
    try:
        return validate_config(data)
    except ConfigError as exc:
        raise ConfigError("%s: %s" % (path, exc))
