# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options, named as in community.postgresql.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host running the database server, or the directory of its Unix socket.
      - When neither O(login_host) nor O(login_unix_socket) is set, libpq's default local socket is used.
    type: str
    aliases: [host, login_hostname]
  login_port:
    description:
      - Database server port.
    type: int
    default: 5432
    aliases: [port]
  login_user:
    description:
      - Role to connect as. Defaults to the operating system user running the module.
    type: str
    aliases: [login, user]
  login_password:
    description:
      - Password of O(login_user).
      - Never placed in a process's arguments; client programs read it from a private 0600 passfile
        that is removed when the task ends.
    type: str
  login_unix_socket:
    description:
      - Directory of the server's Unix socket; takes precedence over O(login_host).
    type: str
    aliases: [unix_socket]
  passfile:
    description:
      - A libpq password file (mode 0600) to read the password from instead of O(login_password).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for a connection.
    type: int
    default: 10
  maintenance_db:
    description:
      - Database to connect to when creating or dropping databases (restores and restore-level verification).
    type: str
    default: postgres
  pg_bin_dir:
    description:
      - Directory holding C(pg_dump), C(pg_dumpall), C(pg_restore) and C(psql).
      - Default is C(/usr/lib/postgresql/<server major>/bin) when it exists, then the newest installed version, then E(PATH).
    type: path
notes:
  - Requires the C(psycopg2) Python library on the managed host.
requirements:
  - psycopg2
"""
