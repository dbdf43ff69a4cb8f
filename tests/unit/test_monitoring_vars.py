"""The monitoring role's exporter environment, rendered by Ansible's own templating from the role's files."""

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "monitoring")
# What lib/pq in Debian's prometheus-postgres-exporter 0.11 accepts; anything else fails every collector.
LIB_PQ_SSLMODES = ("disable", "require", "verify-ca", "verify-full")


def _trusted(value):
    """Role files are templates Ansible trusts; plain YAML loading does not mark them so."""
    if isinstance(value, dict):
        return dict((k, _trusted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return trust_as_template(value) if isinstance(value, str) else value


def role_vars(**overrides):
    merged = {}
    for part in ("defaults", "vars"):
        with open(os.path.join(ROLE, part, "main.yml")) as handle:
            merged.update(_trusted(yaml.safe_load(handle)))
    merged.update(overrides)
    return merged


@pytest.mark.parametrize("host, mode", [("127.0.0.1", "disable"), ("db1.internal", "require")])
def test_the_exporter_gets_an_sslmode_its_driver_knows(host, mode):
    variables = role_vars(monitoring_postgres_login_host=host)
    uri = Templar(loader=DataLoader(), variables=variables).template(variables["__monitoring_postgres_env"]["DATA_SOURCE_URI"])
    assert uri.endswith("?sslmode=" + mode) and uri.startswith(host + ":")
    assert uri.rsplit("=", 1)[1] in LIB_PQ_SSLMODES
