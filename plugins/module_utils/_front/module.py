# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module shares: argument specs, building the engine's config, error mapping.

Modules stay thin: parse arguments, build the same configuration dictionary
the CLI reads from lifeboat.yml, call the engine, map typed errors to
``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._config.schema import (
    CONNECTION_FIELDS,
    DEFAULT_BACKUP_ROOT,
    NOTIFY_FIELDS,
    OFFSITE_FIELDS,
    RETENTION_FIELDS,
    SSL_MODES,
    load_config_file,
    validate_config,
    validate_section,
)
from .._errors import LifeboatError
from .._stream import scratch as _scratch

CONNECTION_KEYS = tuple(CONNECTION_FIELDS)


def connection_argument_spec():
    """Options of doc fragment lifeboat.backup.connection (names as in community.postgresql)."""
    return dict(
        login_host=dict(type="str", aliases=["host", "login_hostname"]),
        login_port=dict(type="int", default=5432, aliases=["port"]),
        login_user=dict(type="str", aliases=["login", "user"]),
        login_password=dict(type="str", no_log=True),
        login_unix_socket=dict(type="str", aliases=["unix_socket"]),
        passfile=dict(type="path", no_log=False),
        connect_timeout=dict(type="int", default=10),
        maintenance_db=dict(type="str", default="postgres"),
        pg_bin_dir=dict(type="path"),
        ssl_mode=dict(type="str", default="prefer", choices=list(SSL_MODES)),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        ssl_cert=dict(type="path"),
        ssl_key=dict(type="path", no_log=False),
        connect_params=dict(type="dict", default={}),
        session_role=dict(type="str"),
    )


def storage_argument_spec():
    """Options of doc fragment lifeboat.backup.storage."""
    return dict(
        backup_root=dict(type="path", default=DEFAULT_BACKUP_ROOT),
        log_dir=dict(type="path"),
        metrics_dir=dict(type="path"),
    )


def consumer_file_options():
    """Suboptions every rotation's consumers share: the file written and its owner, group and mode."""
    return dict(
        path=dict(type="path", required=True),
        owner=dict(type="str"),
        group=dict(type="str"),
        mode=dict(type="str", default="0600"),
    )


def notify_argument_spec():
    """Options of doc fragment lifeboat.backup.notify: the webhook a failed task posts to (the URL is a secret)."""
    return dict(
        webhook_url=dict(type="str", no_log=True),
        webhook_format=dict(type="str", choices=list(NOTIFY_FIELDS["webhook_format"].choices),
                            default=NOTIFY_FIELDS["webhook_format"].default),
    )


def webhook_of(params, host_notify=None):
    """The notify section from a module's webhook options or, without ``webhook_url``, the webhook of ``host_notify``
    (the notify section of the host's lifeboat configuration), never its dead-man's switch: that one watches the
    host's backups. None when there is no webhook."""
    if params.get("webhook_url"):
        return {"webhook_url": params["webhook_url"], "webhook_format": params["webhook_format"]}
    if host_notify and host_notify.get("webhook_url"):
        return dict((k, host_notify[k]) for k in ("webhook_url", "webhook_format", "timeout") if host_notify.get(k) is not None)
    return None


def selection_argument_spec():
    """Options of doc fragment lifeboat.backup.selection: which backup to read."""
    return dict(
        path=dict(type="path"),
        profile=dict(type="str"),
        backup_id=dict(type="str"),
        identity_file=dict(type="path", no_log=False),
    )


def offsite_argument_spec():
    """Options of doc fragment lifeboat.backup.offsite (names and aliases as in amazon.aws)."""
    return dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default="lifeboat"),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
        region=dict(type="str", aliases=["aws_region"]),
        addressing_style=dict(type="str", choices=["auto", "path", "virtual"], default="auto"),
        storage_class=dict(type="str"),
        server_side_encryption=dict(type="str", choices=["AES256", "aws:kms"], aliases=["encryption_mode"]),
        sse_kms_key_id=dict(type="str", aliases=["encryption_kms_key_id"]),
        access_key=dict(type="str", no_log=True, aliases=["aws_access_key_id", "aws_access_key"]),
        secret_key=dict(type="str", no_log=True, aliases=["aws_secret_access_key", "aws_secret_key"]),
        session_token=dict(type="str", no_log=True, aliases=["aws_session_token"]),
        aws_profile=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        aws_ca_bundle=dict(type="path"),
        checksum_mode=dict(type="str", choices=["when_supported", "when_required"], default="when_supported"),
        object_lock_mode=dict(type="str", choices=["GOVERNANCE", "COMPLIANCE"]),
        object_lock_days=dict(type="int"),
        part_size_mb=dict(type="int", default=16),
    )


def retention_argument_spec():
    """Option ``retention`` of doc fragment lifeboat.backup.retention: the configuration's retention mapping."""
    kinds = {"int": "int", "str": "str"}
    return dict(retention=dict(type="dict", options=dict((k, dict(type=kinds[f.kind])) for k, f in RETENTION_FIELDS.items())))


def offsite_source_argument_spec():
    """Option ``offsite`` of doc fragment lifeboat.backup.offsite.source: read a backup from the bucket."""
    options = offsite_argument_spec()
    options["host"] = dict(type="str")
    return dict(offsite=dict(type="dict", options=options))


def offsite_of(params):
    """The offsite section of the engine's configuration from module parameters (validated like lifeboat.yml)."""
    names = set(offsite_argument_spec())
    return validate_section(dict((k, v) for k, v in params.items() if k in names and v is not None), OFFSITE_FIELDS, "offsite")


def connection_of(params, prefix=""):
    return dict((k, params.get(prefix + k)) for k in CONNECTION_KEYS if params.get(prefix + k) is not None)


def build_config(params, profiles=None, encryption=None, notify=None):
    """The engine's configuration from module parameters (validated like lifeboat.yml)."""
    data = {
        "connection": connection_of(params),
        "backup_root": params.get("backup_root") or DEFAULT_BACKUP_ROOT,
        "log_dir": params.get("log_dir"),
        "metrics_dir": params.get("metrics_dir"),
        "profiles": profiles or {},
    }
    if encryption:
        data["encryption"] = encryption
    if notify:
        data["notify"] = notify
    return validate_config(data)


def run(module, action):
    """Call ``action()`` and exit the module with its result, or one clear failure message."""
    _scratch.sweep()  # what a killed run left in the temporary directory (decrypted archives)
    try:
        result = action()
    except LifeboatError as exc:
        module.fail_json(msg=str(exc), error_kind=exc.kind)
    module.exit_json(**result)


def config_from_file(path):
    """The configuration file the lifeboat command reads (modules that act as the scheduled run use it too)."""
    return load_config_file(path)


def retention_of(mapping):
    """A ``retention:`` option, validated like the configuration's."""
    return validate_section(mapping, RETENTION_FIELDS, "retention")


def scratch_of(config, params):
    """The server for restore-level verification: the connection with the module's scratch_* options on top."""
    return validate_section(dict(config["connection"], **connection_of(params, "scratch_")), CONNECTION_FIELDS, "scratch")
