"""The supported ansible-core range is stated once and tested at both ends: the suite itself runs on the highest
minor, and the daily playbook runs here on the lowest, from a venv of its own (cached under .build/)."""

import os
import re
import subprocess
import sys

import yaml
from conftest import REPO, VENV_BIN, ansible_env
from test_playbooks import INVENTORY, PLAYBOOK, complete_backups, settings, shop_profiles, write_vars


def supported_range():
    """(lowest, highest) minor versions from meta/runtime.yml's requires_ansible, e.g. ((2, 16), (2, 19))."""
    with open(os.path.join(REPO, "meta", "runtime.yml")) as handle:
        stated = yaml.safe_load(handle)["requires_ansible"]
    low_major, low_minor, high_major, below = map(int, re.fullmatch(r">=(\d+)\.(\d+)\.0,<(\d+)\.(\d+)\.0", stated).groups())
    return (low_major, low_minor), (high_major, below - 1)


def core_version(python):
    out = subprocess.run([python, "-c", "import ansible.release; print(ansible.release.__version__)"],
                         capture_output=True, text=True, check=True).stdout
    return tuple(int(p) for p in out.strip().split(".")[:2])


def lowest_core_venv(lowest):
    """requirements.txt with the newest patch release of the lowest supported minor; made once, then reused."""
    home = os.path.join(REPO, ".build", "core-%d.%d" % lowest)
    python = os.path.join(home, "bin", "python")
    if not os.path.exists(python) or core_version(python) != lowest:
        subprocess.run([sys.executable, "-m", "venv", "--clear", home], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", os.path.join(REPO, "requirements.txt"), "ansible-core==%d.%d.*" % lowest],
                       check=True, capture_output=True, timeout=600)
    return home


def test_the_range_is_stated_the_same_everywhere():
    (lo_major, lo_minor), (hi_major, hi_minor) = supported_range()
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        assert "ansible-core>=%d.%d,<%d.%d\n" % (lo_major, lo_minor, hi_major, hi_minor + 1) in handle.read()
    with open(os.path.join(REPO, "README.md")) as handle:
        assert "ansible-core %d.%d to %d.%d" % (lo_major, lo_minor, hi_major, hi_minor) in handle.read()
    # The suite's own controller is the highest supported minor, so every other test covers that end.
    assert core_version(os.path.join(VENV_BIN, "python")) == (hi_major, hi_minor)


def test_daily_backup_runs_on_the_lowest_supported_core(pg, shop_db, age_key, tmp_path):
    lowest = supported_range()[0]
    home = lowest_core_venv(lowest)
    data = settings(pg, age_key, str(tmp_path), shop_profiles(shop_db))
    vars_file = write_vars(tmp_path / "vars.json", data)
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1",
                      PATH=os.path.join(home, "bin") + os.pathsep + os.environ.get("PATH", ""))
    version = subprocess.run([os.path.join(home, "bin", "ansible-playbook"), "--version"], capture_output=True, text=True,
                             env=env, check=True).stdout
    assert "core %d.%d." % lowest in version
    for extra in (["--check"], []):
        argv = [os.path.join(home, "bin", "ansible-playbook"), PLAYBOOK, "-i", INVENTORY, "-e", "@" + vars_file] + extra
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    for name in ("payments", "full"):
        (backup,) = complete_backups(data["agent_backup_root"], name)
        assert backup.verification["ok"], backup.verification
