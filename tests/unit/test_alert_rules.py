"""The shipped alert rules load in Prometheus and every alert fires on its case and stays quiet on its neighbour
(promtool's own unit-test runner over tests/unit/promtool/*.test.yml)."""

import glob
import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

RULES = os.path.join(REPO, "roles", "monitoring", "files", "lifeboat.rules.yml")
TESTS = sorted(glob.glob(os.path.join(REPO, "tests", "unit", "promtool", "*.test.yml")))
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: run scripts/bootstrap.sh test (Debian package prometheus)")


def _promtool(*args):
    return subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, timeout=300, check=False)


def test_rules_file_is_valid():
    proc = _promtool("check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_unit_test():
    import yaml

    with open(RULES, encoding="utf-8") as handle:
        alerts = set(rule["alert"] for group in yaml.safe_load(handle)["groups"] for rule in group["rules"] if "alert" in rule)
    tested = {}
    for path in TESTS:
        with open(path, encoding="utf-8") as handle:
            for case in yaml.safe_load(handle)["tests"]:
                for check in case.get("alert_rule_test", []):
                    tested.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    # Every alert: at least one case where it fires and one where it stays quiet.
    assert dict((name, tested.get(name, set())) for name in alerts if tested.get(name) != {True, False}) == {}


@pytest.mark.parametrize("path", TESTS, ids=os.path.basename)
def test_promtool_unit_tests(path):
    proc = _promtool("test", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
