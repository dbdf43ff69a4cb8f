"""Role lifeboat.backup.agent refuses bad settings before it changes anything, with one message that
names the variable to fix. Runs the role's preflight (check mode) against this machine (Debian 12)."""

import copy
import json
import os
import subprocess

import pytest

from tests.conftest import COLLECTIONS, REPO, VENV_BIN

RECIPIENT = "age168cdtntuaweau7065du327v3d0yymswhukelwgwnn9un24sgffhqwqc9ft"
GOOD = {
    "agent_connection": {"login_host": "127.0.0.1", "login_user": "lifeboat_backup", "login_password": "s3cret-value"},
    "agent_recipients": [RECIPIENT],
    "agent_profiles": {
        "payments": {"db": "shop", "tables": ["public.payments"], "schedule": "15 * * * *"},
        "full": {"db": "shop", "schedule": "@daily"},
        "manual": {"db": "shop"},
    },
}
PLAY = """
- name: Preflight of the agent role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply the role (only its checks run, through --tags)
      ansible.builtin.import_role:
        name: lifeboat.backup.agent
"""


def preflight(tmp_path, **changes):
    variables = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "play.yml").write_text(PLAY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=os.path.join(REPO, "tests", "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", "--check", "--tags", "lifeboat_agent_preflight",
         "-e", "ansible_python_interpreter=" + os.path.join(VENV_BIN, "python"),
         "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def test_good_settings_pass(tmp_path):
    rc, out = preflight(tmp_path)
    assert rc == 0, out
    assert "s3cret-value" not in out


def test_unencrypted_backups_need_no_recipients_when_chosen(tmp_path):
    rc, out = preflight(tmp_path, agent_encryption_mode="none", agent_recipients=[])
    assert rc == 0, out


@pytest.mark.parametrize("changes, message", [
    ({"agent_recipients": []}, "agent_recipients is empty"),
    ({"agent_recipients": ["not-a-key"]}, 'agent_recipients: "not-a-key" is not an age public key'),
    ({"agent_profiles": {}}, "agent_profiles is empty"),
    ({"agent_profiles": {"bad name": {"db": "shop"}}}, 'bad profile name "bad name"'),
    ({"agent_profiles": {"payments": {"tables": ["public.payments"]}}}, "agent_profiles.payments.db"),
    ({"agent_profiles": {"payments": {"db": "shop", "schedule": "every hour"}}}, "agent_profiles.payments.schedule"),
    ({"agent_profiles": {"payments": {"db": "shop", "schedule": "@fortnightly"}}}, "agent_profiles.payments.schedule"),
    ({"agent_connection": {"login_host": "127.0.0.1"}}, "agent_connection.login_password is not set"),
    ({"agent_auth_method": "peer"}, "agent_auth_method is peer"),
    ({"agent_postgresql_major": 14}, "agent_postgresql_major is 14 but this host runs PostgreSQL 15"),
    ({"agent_log_retention_days": "many"}, "agent_log_retention_days"),
    ({"agent_encryption_mode": "rot13"}, "agent_encryption_mode"),
    ({"agent_connection": {"login_password": "s3cret-value", "login_prot": 5432}}, "login_prot"),
])
def test_bad_settings_fail_naming_the_variable(tmp_path, changes, message):
    rc, out = preflight(tmp_path, **changes)
    assert rc != 0
    assert message in out, out
    assert "s3cret-value" not in out
