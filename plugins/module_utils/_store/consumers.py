# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files a credential lives in on a host: a libpq passfile, an env file, the lifeboat configuration.

A database password goes into any of the three (``render``); an offsite access key into an env file or the
lifeboat configuration's offsite sections (``render_offsite_key``).

Each is rewritten whole, atomically (a reader opening it per connection sees the old file or the new one, never
half), with its owner and group and a private mode, and nothing else in it changes: other passfile lines and other
env keys stay. Writing returns the previous bytes, so a failed rotation can put every file back as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import stat
import tempfile

from .._errors import ConfigError, StorageError
from .._postgres.session import passfile_escape
from .files import fsync_dir, storage_error

KINDS = ("passfile", "env", "lifeboat_config")
PRIVATE_BITS = stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP  # never for others; group may at most read


def normalize(consumer, env_keys):
    """A consumer with its defaults, or ConfigError naming what is wrong.

    ``env_keys``: the variables an env file holds the secret and its login (or key id) in unless the consumer names
    them, {"key": ..., "user_key": ...}; each rotation declares its own (PGPASSWORD or AWS_SECRET_ACCESS_KEY...).
    """
    item = dict((k, v) for k, v in dict(consumer).items() if v is not None)
    kind = item.get("type")
    if kind not in KINDS:
        raise ConfigError("consumers: type must be one of %s, got %r" % (", ".join(KINDS), kind))
    if not item.get("path") or not os.path.isabs(item["path"]):
        raise ConfigError("consumers: %s needs an absolute path, got %r" % (kind, item.get("path")))
    mode = item.get("mode", "0600")
    try:
        mode = int(str(mode), 8)
    except ValueError:
        raise ConfigError("consumers: mode of %s must be octal such as 0600, got %r" % (item["path"], mode))
    if mode & PRIVATE_BITS or mode & ~0o777:
        raise ConfigError("consumers: mode %o of %s would let others read a password; use 0600 (or 0640)" % (mode, item["path"]))
    item["mode"] = mode
    if kind == "env":
        item = dict(env_keys, **item)
    if kind == "passfile":
        for field in ("host", "port", "database"):
            item[field] = str(item.get(field) or "*")
    return item


def _passfile_fields(line):
    fields, current, escaped = [], "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    return fields + [current]


def render(consumer, old, login, password, logins):
    """The new contents (bytes) of one consumer file holding ``login``/``password``.

    ``logins``: every login name of this credential; their old lines or values are replaced.
    """
    text = old.decode("utf-8") if old else ""
    kind = consumer["type"]
    if kind == "passfile":
        ours = [consumer["host"], consumer["port"], consumer["database"]]
        kept = [line for line in text.splitlines() if not _ours(line, ours, logins)]
        entry = ":".join(passfile_escape(v) for v in ours + [login, password])
        return ("\n".join([entry] + kept) + "\n").encode("utf-8")  # first matching line wins in libpq
    if kind == "env":
        return _env_text(text, {consumer["key"]: password, consumer["user_key"]: login})
    return _config_text(consumer, text, login, password)


def _env_text(text, values):
    lines = [line for line in text.splitlines() if line.split("=", 1)[0].strip() not in values]
    lines += ["%s=%s" % (key, value) for key, value in values.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _ours(line, ours, logins):
    fields = _passfile_fields(line)
    return len(fields) == 5 and fields[:3] == ours and fields[3] in logins


def _config_text(consumer, text, login, password):
    data = _config_data(consumer, text)
    connection = dict(data.get("connection") or {})
    connection.update(login_user=login, login_password=password)
    connection.pop("passfile", None)  # libpq would prefer nothing over the password, but one source is clearer
    data["connection"] = connection
    return yaml_dump(data)


def render_offsite_key(consumer, old, old_id, key_id, secret):
    """The new contents (bytes) of one consumer file holding the offsite access key ``key_id``/``secret``.

    ``env``: its ``user_key`` (the key id) and ``key`` (the secret) lines are replaced, other lines stay.
    ``lifeboat_config``: every offsite section (top level, profiles' overrides) holding ``old_id`` gets the new key;
    when none holds a key at all, the top level does. A file holding other keys but not ``old_id`` is refused: it
    belongs to another user, and rewriting it would cut its hosts off.
    """
    text = old.decode("utf-8") if old else ""
    if consumer["type"] == "env":
        return _env_text(text, {consumer["key"]: secret, consumer["user_key"]: key_id})
    if consumer["type"] != "lifeboat_config":
        raise ConfigError("consumers: an offsite access key goes into env or lifeboat_config files, not %s" % consumer["type"])
    data = _config_data(consumer, text)
    sections = _offsite_sections(data, create=True)
    ours = [section for section in sections if section.get("access_key") == old_id]
    if not ours:
        if any(section.get("access_key") for section in sections):
            raise ConfigError("consumers: %s holds offsite keys, but not %s, the key being rotated; not rewriting it"
                              % (consumer["path"], old_id))
        ours = sections[:1]
    for section in ours:
        section.update(access_key=key_id, secret_key=secret)
        section.pop("session_token", None)  # belongs to temporary credentials, never to a user's access key
    return yaml_dump(data)


def offsite_keys_of(consumer, data):
    """(key id, secret) pairs a client reading this file finds: one for env, one per offsite section for lifeboat_config."""
    text = data.decode("utf-8") if data else ""
    if consumer["type"] == "env":
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return [(values.get(consumer["user_key"]), values.get(consumer["key"]))]
    return [(s.get("access_key"), s.get("secret_key")) for s in _offsite_sections(_config_data(consumer, text), create=False)
            if s.get("access_key")]


def _config_data(consumer, text):
    import yaml  # the CLI needs PyYAML anyway; module hosts get it with ansible

    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as exc:
        raise ConfigError("consumers: %s is not valid YAML: %s" % (consumer["path"], exc))
    if not isinstance(data, dict):
        raise ConfigError("consumers: %s is not a lifeboat configuration (a mapping)" % consumer["path"])
    return data


def _offsite_sections(data, create):
    """The top-level offsite section first (created when asked), then each profile's override, as live dicts."""
    if create and not isinstance(data.get("offsite"), dict):
        data["offsite"] = {}
    found = [data["offsite"]] if isinstance(data.get("offsite"), dict) else []
    for profile in (data.get("profiles") or {}).values():
        if isinstance(profile, dict) and isinstance(profile.get("offsite"), dict):
            found.append(profile["offsite"])
    return found


def yaml_dump(data):
    import yaml

    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False).encode("utf-8")


def read(path):
    """The current bytes of a consumer file; None when it does not exist yet."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error("read", path, exc)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _ids(consumer):
    """uid and gid to give the file: as asked, else the existing file's, else ours."""
    try:
        current = os.lstat(consumer["path"])
        uid, gid = current.st_uid, current.st_gid
    except FileNotFoundError:
        uid, gid = os.geteuid(), os.getegid()
    try:
        if consumer.get("owner") is not None:
            owner = str(consumer["owner"])
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        if consumer.get("group") is not None:
            group = str(consumer["group"])
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise ConfigError("consumers: no such user or group %s for %s" % (exc, consumer["path"]))
    return uid, gid


def write(consumer, data):
    """Replace the file with ``data`` in one rename: unpredictable temporary name, owner, group, mode, fsync."""
    path = consumer["path"]
    directory = os.path.dirname(path)
    if os.path.islink(path):
        raise StorageError("refusing to write %s: it is a symbolic link" % path)
    uid, gid = _ids(consumer)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    except OSError as exc:
        raise storage_error("write", path, exc)
    try:
        try:
            os.fchmod(fd, consumer["mode"] & 0o600)  # private while it fills, whatever the final group bits
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, consumer["mode"])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        fsync_dir(directory)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise storage_error("write", path, exc)


def restore(consumer, previous):
    """Put a file back as it was before the rotation (remove it when it did not exist)."""
    if previous is None:
        try:
            os.unlink(consumer["path"])
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error("remove", consumer["path"], exc)
    else:
        write(consumer, previous)


def credential_of(consumer, data, login=None):
    """(login, password) as a client reading this file would find them; None where absent.

    ``login``: in a passfile, also the first line of that user when no line has the consumer's host/port/database.
    """
    text = data.decode("utf-8") if data else ""
    kind = consumer["type"]
    if kind == "env":
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return values.get(consumer["user_key"]), values.get(consumer["key"])
    if kind == "passfile":
        for line in text.splitlines():
            fields = _passfile_fields(line)
            if len(fields) == 5 and fields[:3] == [consumer["host"], consumer["port"], consumer["database"]]:
                return fields[3], fields[4]
        for line in text.splitlines():
            fields = _passfile_fields(line)
            if login and len(fields) == 5 and fields[3] == login:
                return fields[3], fields[4]
        return None, None
    import yaml

    connection = (yaml.safe_load(text) or {}).get("connection") or {} if text else {}
    return connection.get("login_user"), connection.get("login_password")
