"""The role writes the rules file from the shipped rules, per-profile age limits and the operator's groups, and
Prometheus accepts it; the limit makes LifeboatBackupStale fire for that profile only (promtool on the output)."""

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import VENV_BIN, ansible_env

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run scripts/bootstrap.sh test")


def test_role_writes_a_rules_file_prometheus_accepts(tmp_path):
    rules = tmp_path / "rules" / "lifeboat.rules.yml"
    playbook = tmp_path / "rules.yml"
    extra = {"name": "site", "rules": [{"alert": "SiteBackupSmall", "expr": "lifeboat_backup_size_bytes < 1000"}]}
    playbook.write_text(json.dumps([{
        "name": "Write the rules", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Write them", "ansible.builtin.include_role": {"name": "lifeboat.backup.monitoring", "tasks_from": "rules"},
                   "vars": {"monitoring_alert_rules_file": str(rules), "monitoring_backup_max_age": {"payments": 5400},
                            "monitoring_alert_rules": [extra]}}],
    }]))
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-c", "local", "-i", "localhost,", str(playbook)]
    for _run in range(2):
        proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default"), timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed=0" in proc.stdout  # the second run changes nothing
    check = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    test = tmp_path / "t.yml"
    test.write_text(json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'lifeboat_backup_last_success_timestamp_seconds{profile="%s",instance="h"}' % p, "values": "0x200"}
                         for p in ("payments", "orders")]
        + [{"series": 'lifeboat_backup_last_attempt_timestamp_seconds{profile="%s",instance="h"}' % p, "values": "0x200"}
           for p in ("payments", "orders")],
        "alert_rule_test": [{"eval_time": "100m", "alertname": "LifeboatBackupStale", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "profile": "payments", "instance": "h"},
            "exp_annotations": {
                "summary": "No successful backup of profile payments on h for 1h 40m 0s",
                "description": "The newest successful backup is older than the profile's limit (its interval x 1.5 or its RPO objective). "
                               "Check the cron log /var/log/lifeboat/payments.log and run `lifeboat run --profile payments`."}}]}],
    }]}))
    result = subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SiteBackupSmall" in rules.read_text()
