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
  ssl_mode:
    description:
      - Whether and how the connection uses TLS, as libpq's C(sslmode); the client programs get the same setting.
      - V(verify-full) checks the server's certificate against O(ca_cert) and its host name.
    type: str
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
    default: prefer
  ca_cert:
    description:
      - File of the CA certificate(s) the server's certificate must chain to (libpq's C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - Client certificate file, for servers that authenticate clients by certificate (libpq's C(sslcert)).
    type: path
  ssl_key:
    description:
      - Private key of O(ssl_cert) (libpq's C(sslkey)); it must be unencrypted and readable only by its owner.
    type: path
  connect_params:
    description:
      - Further libpq connection keywords, for example C(target_session_attrs) or C(options).
      - Only keywords libpq also reads from an environment variable are accepted, so C(pg_dump) and C(pg_restore)
        connect exactly as the module does; keywords with an option of their own (C(host), C(sslmode), ...) and
        passwords are refused with the option to use instead.
    type: dict
    default: {}
  session_role:
    description:
      - Role to switch to after connecting (as C(SET ROLE)), for every connection and client program; the backup
        then runs with that role's privileges. O(login_user) must be a member of it.
    type: str
notes:
  - Requires the C(psycopg2) Python library on the managed host.
requirements:
  - psycopg2
"""
