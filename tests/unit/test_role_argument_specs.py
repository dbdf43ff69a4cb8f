"""Each public role's defaults/main.yml and meta/argument_specs.yml describe the same variables,
and the agent's connection, notify and offsite options mirror the engine's one schema."""

import os
import re

import pytest
import yaml

from tests.conftest import REPO, Engine

ROLES = ("agent", "monitoring")


def _load(role, *parts):
    with open(os.path.join(REPO, "roles", role, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module", params=ROLES)
def role(request):
    return request.param


@pytest.fixture(scope="module")
def defaults(role):
    return _load(role, "defaults", "main.yml")


@pytest.fixture(scope="module")
def options(role):
    return _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


@pytest.fixture(scope="module")
def agent_options():
    return _load("agent", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_default_is_documented_and_every_option_has_a_default(defaults, options):
    assert sorted(defaults) == sorted(options)


def test_defaults_are_identical(defaults, options):
    different = dict((name, (defaults[name], spec.get("default"))) for name, spec in options.items()
                     if "default" not in spec or spec["default"] != defaults[name])
    assert different == {}


def test_public_variables_use_the_role_prefix(role, defaults):
    assert [name for name in defaults if not re.match(r"^%s_[a-z0-9_]+$" % role, name)] == []


def _undescribed(spec, path=""):
    missing = []
    for name, option in spec.items():
        if not option.get("description"):
            missing.append(path + name)
        missing += _undescribed(option.get("options") or {}, path + name + ".")
    return missing


def test_every_option_is_described(options):
    assert _undescribed(options) == []


def _secret(name):
    return name in ("login_password", "webhook_url", "deadman_url", "access_key", "secret_key", "session_token")


@pytest.mark.parametrize("variable, fields", [
    ("agent_connection", "CONNECTION_FIELDS"),
    ("agent_notify", "NOTIFY_FIELDS"),
    ("agent_offsite", "OFFSITE_FIELDS"),
])
def test_sections_mirror_the_engine_schema(agent_options, variable, fields):
    config = Engine().config
    engine = getattr(config, fields)
    role = agent_options[variable]["options"]
    assert sorted(role) == sorted(engine)
    kinds = {"str": "str", "int": "int", "bool": "bool", "list": "list", "dict": "dict", "section": "dict"}
    assert dict((k, role[k]["type"]) for k in role) == dict((k, kinds[f.kind]) for k, f in engine.items())
    for name, field in engine.items():
        if field.choices:
            assert sorted(role[name]["choices"]) == sorted(field.choices), name
        assert bool(role[name].get("no_log")) == _secret(name), name
        if field.kind == "section":
            assert sorted(role[name]["options"]) == sorted(field.fields), name


def _stated_default(description):
    """``"... (default V(json))."`` -> ``"json"``; None when the description states no default."""
    match = re.search(r"\(default (?:[VC]\()?([^()]+?)\)?\)", " ".join(description) if isinstance(description, list) else description)
    return match and match.group(1)


def _as_text(value):
    return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("variable, fields", [
    ("agent_connection", "CONNECTION_FIELDS"),
    ("agent_notify", "NOTIFY_FIELDS"),
    ("agent_offsite", "OFFSITE_FIELDS"),
])
def test_sections_state_the_engine_defaults(agent_options, variable, fields):
    """The role leaves unset keys to the engine, so its descriptions state the engine's defaults, and correctly."""
    engine = getattr(Engine().config, fields)
    role = agent_options[variable]["options"]
    stated = dict((name, _stated_default(role[name]["description"])) for name, field in engine.items()
                  if field.default not in (None, [], {}))
    assert stated == dict((name, _as_text(field.default)) for name, field in engine.items() if field.default not in (None, [], {}))


def test_profile_keys_are_documented(agent_options):
    text = " ".join(agent_options["agent_profiles"]["description"])
    engine = Engine().config
    assert [key for key in engine.PROFILE_FIELDS if "C(%s)" % key not in text] == []
    assert [key for key in engine.RETENTION_FIELDS if "C(%s)" % key not in text] == []
