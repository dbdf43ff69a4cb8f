"""One supported ansible-core range: meta/runtime.yml's requires_ansible is the statement; requirements.txt, the
README, the agent role's metadata and the pinned test version agree with it."""

import os
import re

import yaml
from conftest import REPO


def _read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return handle.read()


def _range():
    """``">=2.16.0,<2.20.0"`` -> ((2, 16), (2, 20))."""
    spec = yaml.safe_load(_read("meta", "runtime.yml"))["requires_ansible"]
    low = re.search(r">=\s*(\d+)\.(\d+)", spec)
    high = re.search(r"<\s*(\d+)\.(\d+)", spec)
    assert low and high, "requires_ansible %r needs a lower and an upper bound" % spec
    return (int(low.group(1)), int(low.group(2))), (int(high.group(1)), int(high.group(2)))


def test_requirements_state_the_same_range():
    (lo_major, lo_minor), (hi_major, hi_minor) = _range()
    assert "ansible-core>=%d.%d,<%d.%d\n" % (lo_major, lo_minor, hi_major, hi_minor) in _read("requirements.txt")


def test_readme_states_the_same_range():
    (lo_major, lo_minor), (hi_major, hi_minor) = _range()
    assert "ansible-core %d.%d to %d.%d on the controller" % (lo_major, lo_minor, hi_major, hi_minor - 1) in _read("README.md")


def test_role_minimum_and_tested_version_lie_in_the_range():
    low, high = _range()
    role = yaml.safe_load(_read("roles", "agent", "meta", "main.yml"))["galaxy_info"]
    assert tuple(int(p) for p in str(role["min_ansible_version"]).split(".")[:2]) == low
    pinned = re.search(r"^ansible-core==(\d+)\.(\d+)", _read("requirements-test.txt"), re.M)
    assert low <= (int(pinned.group(1)), int(pinned.group(2))) < high
