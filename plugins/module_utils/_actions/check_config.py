# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``lifeboat check-config [--connect]``: the configuration is valid, and with --connect what it names is reachable.

--connect logs in to the server as the configured user, checks pg_dump is not older than the server, and lists
each offsite-enabled profile's prefix in its bucket (what every push does first), so wrong keys, a missing
bucket or a missing boto3 show at set-up time instead of at the first scheduled push. Webhook and dead-man's-switch
URLs are not contacted: a request there would post a notification or count as a ping.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._errors import LifeboatError
from .._offsite import remote as _remote
from .._offsite import s3 as _s3
from .._postgres import session as _pg


def check(config, connect=False):
    names = sorted(config["profiles"])
    result = {"profiles": names, "backup_root": config["backup_root"]}
    if connect:
        result.update(_check_server(config["connection"]))
        result["offsite"] = [_check_bucket(config, name) for name in names if _remote.enabled(config, name)]
    return result


def _check_server(connection):
    """Connect as this user with the configured credentials; pg_dump must not be older than the server."""
    with _pg.Session(connection, connection["maintenance_db"]) as session:
        handle = session.connect()
        try:
            info = _pg.server_info(handle)
        finally:
            handle.close()
    server_major = _pg.major_of(info["server_version_num"])
    pg_dump, client_major = _pg.find_binary("pg_dump", connection, server_major)
    _pg.require_client_not_older("pg_dump", pg_dump, client_major, server_major)
    return {"server_version": info["server_version"], "pg_dump": pg_dump, "pg_dump_major": client_major}


def _check_bucket(config, profile):
    section = _remote.target(config, profile)
    loc = _remote.Location(section, config["host"], profile)
    remote = _s3.Remote(section)
    try:
        remote.list(loc.base)
    except LifeboatError as exc:
        raise type(exc)("profile %s cannot reach its offsite bucket: %s" % (profile, exc))
    return {"profile": profile, "location": remote.url(loc.base)}
