"""meta/runtime.yml's action group: a play sets the connection and storage options once with module_defaults
(group/lifeboat.backup.lifeboat) and its dump, verify and restore tasks name only what they do."""

import json
import os
import subprocess
import uuid

from conftest import VENV_BIN, ansible_env

PLAY = """
- name: Back up, verify and restore with the options set once
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/lifeboat.backup.lifeboat:
      login_host: "{{ connection.login_host }}"
      login_port: "{{ connection.login_port }}"
      login_user: "{{ connection.login_user }}"
      login_password: "{{ connection.login_password }}"
      backup_root: "{{ backup_root }}"
  tasks:
    - name: Dump the shop
      lifeboat.backup.dump:
        db: "{{ db }}"
        profile: shop
        recipients: ["{{ recipient }}"]
      register: dumped
    - name: Verify it
      lifeboat.backup.verify:
        profile: shop
        level: archive
        identity_file: "{{ identity }}"
    - name: Restore it into a new database
      lifeboat.backup.restore:
        profile: shop
        db: "{{ restored }}"
        identity_file: "{{ identity }}"
"""


def test_module_defaults_group_sets_the_connection_once(pg, shop_db, age_key, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    restored = "grouped_%s" % uuid.uuid4().hex[:6]
    variables = tmp_path / "vars.json"
    fd = os.open(str(variables), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the password stays off argv
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(connection=pg.connection(), backup_root=str(tmp_path / "backups"), db=shop_db,
                       recipient=age_key[1], identity=age_key[0], restored=restored), handle)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(playbook), "-i", "localhost,", "-e", "@%s" % variables],
                          capture_output=True, text=True, timeout=600, check=False,
                          env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok=0" not in proc.stdout and "failed=0" in proc.stdout
    assert pg.psql("SELECT count(*) FROM payments", db=restored) == pg.psql("SELECT count(*) FROM payments", db=shop_db)
    assert pg.password not in proc.stdout + proc.stderr
