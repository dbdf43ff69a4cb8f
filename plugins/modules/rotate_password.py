#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rotate_password
short_description: Rotate a PostgreSQL password without failed logins, tested before the old one is retired
version_added: 0.2.0
description:
  - Rotates the password of O(role) in four steps. B(Create) a new password from Python's C(secrets) (43
    characters), in memory only. B(Set) only its SCRAM-SHA-256 verifier, computed on the managed host, in a session
    that turns C(log_statement), C(log_min_duration_statement), C(log_min_error_statement) and
    C(pg_stat_statements.track_utility) off when the admin may (a superuser); the plaintext never reaches the server.
    B(Test) logs in with the new credential (same host, port and database the consumers use, then through each
    written consumer file) and runs the checks. B(Finish) writes every consumer file atomically, then retires the
    old credential.
  - A failing step leaves the old credential in force (the new login is disabled again, or the old verifier and the
    consumer files are put back) and fails naming what failed.
  - The password is never returned, logged or written anywhere but the consumer files.
  - The time of the last rotation, the active login and the logins waiting out their grace are kept in a 0600 JSON
    file under O(state_dir) on the managed host; run the rotation for a role on one host.
author:
  - lifeboat.backup contributors (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.connection
  - lifeboat.backup.storage
  - lifeboat.backup.notify
attributes:
  check_mode:
    support: full
    description: Says whether the credential is due, which login would get the new password and which would retire;
      changes nothing.
  diff_mode:
    support: none
    description: Secrets are not diffed.
options:
  role:
    description:
      - The role to rotate. With O(strategy=alternate) the NOLOGIN group role holding the privileges; its logins
        are C(<role>_a) and C(<role>_b) (created, as members of the group, when missing).
      - With O(strategy=in_place) the login itself. Defaults to O(login_user).
    type: str
  strategy:
    description:
      - V(alternate) sets the inactive one of two logins, switches the consumers to it and keeps the old login
        working for O(grace); clients that read their credential per connection see no failed login.
      - V(in_place) changes the one login's password while no backup of O(profiles) runs or starts (their credential
        gates are held; a backup scheduled meanwhile waits and then runs with the new credential). The admin must be
        a superuser, or a consumer must hold the current password, so a failed test can put it back.
    type: str
    choices: [alternate, in_place]
    default: alternate
  max_age:
    description:
      - Rotate only when the last rotation is older than this (V(30d), V(12h)); a younger credential is left alone.
    type: str
    default: 30d
  force:
    description: Rotate even when the credential is younger than O(max_age).
    type: bool
    default: false
  revoke:
    description:
      - After a compromise, disable every login of the role at once, terminate its sessions, then rotate (no grace).
    type: bool
    default: false
  grace:
    description:
      - With O(strategy=alternate), how long the old login keeps working after the switch (V(0s) disables it at once).
      - No daemon waits for it. The next run of this module or of C(lifeboat rotate-password) for the role on this
        host, in check mode too (it reports it), disables every login whose grace has passed.
    type: str
    default: 1h
  consumers:
    description: Files the new credential is written to, atomically, with their owner, group and mode.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(passfile) a libpq password file (its line for O(consumers[].host), O(consumers[].port),
            O(consumers[].database) and the login is replaced; other lines stay).
          - V(env) an environment file of C(KEY=value) lines (O(consumers[].key) and O(consumers[].user_key) are
            replaced; other lines stay).
          - V(lifeboat_config) a lifeboat configuration file (C(connection.login_user) and
            C(connection.login_password); comments are not kept).
        type: str
        required: true
        choices: [passfile, env, lifeboat_config]
      path:
        description: Absolute path of the file.
        type: path
        required: true
      owner:
        description: Owner of the file; default its current owner (or the user running the module).
        type: str
      group:
        description: Group of the file; default its current group.
        type: str
      mode:
        description: Mode; nothing for others, at most read for the group.
        type: str
        default: "0600"
      key:
        description: With V(env), the variable holding the password.
        type: str
        default: PGPASSWORD
      user_key:
        description: With V(env), the variable holding the login name.
        type: str
        default: PGUSER
      host:
        description: With V(passfile), the host field of the line.
        type: str
        default: "*"
      port:
        description: With V(passfile), the port field of the line.
        type: str
        default: "*"
      database:
        description: With V(passfile), the database field of the line.
        type: str
        default: "*"
  test:
    description:
      - SQL boolean expressions the new credential must make true, for example
        C(has_table_privilege('payments', 'SELECT')).
      - Always checked as well, by default, that the login works, is the expected login and (alternate) is a member
        of the group.
    type: list
    elements: str
    default: []
  db:
    description: Database the consumers connect to; the test logs in there.
    type: str
    default: postgres
  profiles:
    description:
      - Profiles of the lifeboat configuration O(lifeboat_config) this credential backs up. The test then does what
        a backup does (C(pg_export_snapshot), read every table of each profile) and, with O(strategy=in_place), their
        credential gates are held during the switch.
    type: list
    elements: str
    default: []
  lifeboat_config:
    description:
      - The host's lifeboat configuration where O(profiles) are defined.
      - With O(profiles) and no O(webhook_url), a failed rotation posts the webhook of its C(notify) section.
    type: path
    default: /etc/lifeboat/lifeboat.yml
  state_dir:
    description: Where the rotation state is kept (0700 directory, 0600 files, no secrets); default C(<backup_root>/.rotation).
    type: path
notes:
  - C(changed) is true when a password was (or would be) rotated or an old login was (or would be) disabled; a rerun
    within O(max_age) reports no change.
  - Writes one audit line per run (role, strategy, consumers written, test result; never the secret), metrics
    C(lifeboat_credential_last_rotation_timestamp_seconds) and C(lifeboat_credential_age_seconds) (label C(role)).
  - A failed rotation (not in check mode) posts O(webhook_url) as C(rotate-password:<role>), with the error and never
    a password. Without O(webhook_url), a rotation with O(profiles) posts the C(webhook_url) of O(lifeboat_config)'s
    C(notify) section in its C(webhook_format), as C(lifeboat rotate-password) does; that section's C(deadman_url)
    watches the backups and is not pinged. Otherwise nothing is posted.
seealso:
  - module: lifeboat.backup.dump
"""

EXAMPLES = r"""
- name: Rotate the shop application's password monthly, alternating between shop_a and shop_b
  lifeboat.backup.rotate_password:
    login_user: postgres
    role: shop
    db: shop
    grace: 2h
    consumers:
      - type: env
        path: /etc/shop/database.env
        owner: shop
        group: shop
    test:
      - has_table_privilege('payments', 'SELECT')
      - has_table_privilege('orders', 'INSERT')

- name: Rotate the backup user's password in place; its backups wait for the switch
  lifeboat.backup.rotate_password:
    login_user: postgres
    role: lifeboat
    strategy: in_place
    db: shop
    profiles: [payments, full]
    consumers:
      - type: passfile
        path: /etc/lifeboat/pgpass

- name: Rotate the shop's password and post to the on-call channel when the rotation fails
  lifeboat.backup.rotate_password:
    login_user: postgres
    role: shop
    db: shop
    consumers:
      - type: env
        path: /etc/shop/database.env
    test:
      - has_table_privilege('payments', 'SELECT')
    webhook_url: "{{ vault_oncall_webhook_url }}"
    webhook_format: slack

- name: After a compromise, cut the shop's logins off now and rotate
  lifeboat.backup.rotate_password:
    login_user: postgres
    role: shop
    db: shop
    revoke: true
    consumers:
      - type: env
        path: /etc/shop/database.env
"""

RETURN = r"""
rotated:
  description: Whether a new password was set in this run.
  returned: always
  type: bool
due:
  description: Whether the credential was due (older than O(max_age), forced or revoked).
  returned: always
  type: bool
active_login:
  description: The login the consumers use now (in check mode, the one that would get the new password when due).
  returned: always
  type: str
  sample: shop_b
retired_login:
  description: The login disabled in this run (its grace passed, or O(grace=0s), or O(revoke)); null otherwise.
  returned: always
  type: str
  sample: shop_a
rotated_at:
  description: When the credential was last rotated (UTC), null when it never was here.
  returned: always
  type: str
  sample: "2026-12-01T23:00:00Z"
next_due:
  description: When the credential becomes due again.
  returned: always
  type: str
  sample: "2026-12-31T23:00:00Z"
pending_retirement:
  description: Logins still working until their grace passes.
  returned: always
  type: list
  elements: dict
  sample: [{"login": "shop_a", "after": "2026-12-02T01:00:00Z"}]
consumers:
  description: Consumer files written (in check mode, that would be written).
  returned: always
  type: list
  elements: str
tests:
  description: What the new credential proved it can do.
  returned: always
  type: list
  elements: str
  sample: ["login as shop_b", "2 SQL checks", "login through /etc/shop/database.env"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeboat.backup.plugins.module_utils._actions import rotate as _rotate
from ansible_collections.lifeboat.backup.plugins.module_utils._front.module import (
    build_config, config_from_file, connection_argument_spec, consumer_file_options, notify_argument_spec, run,
    storage_argument_spec, webhook_of,
)

CONSUMER_OPTIONS = dict(
    consumer_file_options(),
    type=dict(type="str", required=True, choices=["passfile", "env", "lifeboat_config"]),
    key=dict(type="str", default=_rotate.ENV_KEYS["key"], no_log=False),
    user_key=dict(type="str", default=_rotate.ENV_KEYS["user_key"], no_log=False),
    host=dict(type="str", default="*"),
    port=dict(type="str", default="*"),
    database=dict(type="str", default="*"),
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(storage_argument_spec())
    argument_spec.update(notify_argument_spec())
    argument_spec.update(
        role=dict(type="str"),
        strategy=dict(type="str", choices=["alternate", "in_place"], default="alternate"),
        max_age=dict(type="str", default=_rotate.DEFAULT_MAX_AGE),
        force=dict(type="bool", default=False),
        revoke=dict(type="bool", default=False),
        grace=dict(type="str", default=_rotate.DEFAULT_GRACE),
        consumers=dict(type="list", elements="dict", options=CONSUMER_OPTIONS, default=[]),
        test=dict(type="list", elements="str", default=[]),
        db=dict(type="str", default="postgres"),
        profiles=dict(type="list", elements="str", default=[]),
        lifeboat_config=dict(type="path", default="/etc/lifeboat/lifeboat.yml"),
        state_dir=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def action():
        host = config_from_file(params["lifeboat_config"]) if params["profiles"] else None
        profiles, backup_root = (host["profiles"], host["backup_root"]) if host else ({}, None)
        config = build_config(dict(params, backup_root=backup_root or params["backup_root"]), profiles=profiles,
                              notify=webhook_of(params, host and host["notify"]))
        result = _rotate.rotate(
            config, via="module", check_mode=module.check_mode, role=params["role"], strategy=params["strategy"],
            max_age=params["max_age"], force=params["force"], revoke=params["revoke"], grace=params["grace"],
            consumers=params["consumers"], tests=params["test"], db=params["db"], profiles=params["profiles"],
            state_dir=params["state_dir"])
        for warning in result.pop("warnings"):
            module.warn(warning)
        result.pop("rotated_epoch", None)
        return result

    run(module, action)


if __name__ == "__main__":
    main()
