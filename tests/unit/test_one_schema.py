"""One schema, checked everywhere: the engine's configuration schema, the modules' argument specs, their
documentation (with the doc fragments merged as Ansible merges them) and the agent role's argument specs
name the same options with the same types, defaults and choices.

The role's side is in test_role_argument_specs.py; this file checks modules against their docs and both
against the engine's schema.
"""

import glob
import importlib
import importlib.util
import os
import sys

import pytest
import yaml

from tests.conftest import COLLECTIONS, REPO, Engine

MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))
ANSIBLE_TYPES = {"path": "str", "str": "str", "int": "int", "bool": "bool", "list": "list", "dict": "dict"}


class _Captured(Exception):
    pass


def argument_spec(name, monkeypatch):
    """The argument spec a module hands to AnsibleModule, caught before it parses anything."""
    sys.path.insert(0, COLLECTIONS)
    try:
        module = importlib.import_module("ansible_collections.lifeboat.backup.plugins.modules." + name)
    finally:
        sys.path.remove(COLLECTIONS)

    def capture(argument_spec, **kwargs):
        raise _Captured(argument_spec)

    monkeypatch.setattr(module, "AnsibleModule", capture)
    with pytest.raises(_Captured) as caught:
        module.main()
    return caught.value.args[0]


def _fragment(name):
    """Options of doc fragment ``lifeboat.backup.<file>[.<variable>]``."""
    parts = name.split(".")[2:]
    path = os.path.join(REPO, "plugins", "doc_fragments", parts[0] + ".py")
    spec = importlib.util.spec_from_file_location("fragment_" + parts[0], path)
    fragment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fragment)
    text = getattr(fragment.ModuleDocFragment, parts[1].upper() if len(parts) > 1 else "DOCUMENTATION")
    return yaml.safe_load(text)["options"]


def documented_options(name):
    """A module's options as ansible-doc shows them: its own plus those of its doc fragments."""
    sys.path.insert(0, COLLECTIONS)
    try:
        module = importlib.import_module("ansible_collections.lifeboat.backup.plugins.modules." + name)
    finally:
        sys.path.remove(COLLECTIONS)
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = {}
    for fragment in doc.get("extends_documentation_fragment") or []:
        options.update(_fragment(fragment))
    options.update(doc.get("options") or {})
    return options


def _shape(spec, documented):
    """What must agree between a spec entry and its documentation (Ansible's defaults made explicit)."""
    entry = dict(
        type=spec.get("type", "str"),
        default=spec.get("default"),
        choices=sorted(spec["choices"]) if spec.get("choices") else None,
        aliases=sorted(spec.get("aliases") or []),
        required=bool(spec.get("required")),
        elements=spec.get("elements"),
    )
    nested = spec.get("suboptions" if documented else "options")
    if nested:
        entry["options"] = dict((k, _shape(v, documented)) for k, v in nested.items())
    return entry


@pytest.mark.parametrize("name", MODULES)
def test_module_documents_its_argument_spec(name, monkeypatch):
    spec = argument_spec(name, monkeypatch)
    documented = documented_options(name)
    assert sorted(documented) == sorted(spec)
    for option in spec:
        assert _shape(documented[option], True) == _shape(spec[option], False), option
    assert _badly_described(documented) == []


def _badly_described(options, path=""):
    """Options whose description is not text (a stray ': ' in YAML turns a line into a mapping)."""
    bad = []
    for name, option in options.items():
        lines = option.get("description")
        lines = lines if isinstance(lines, list) else [lines]
        if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
            bad.append(path + name)
        bad += _badly_described(option.get("suboptions") or {}, path + name + ".")
    return bad


def _field_shape(field):
    return dict(type={"section": "dict"}.get(field.kind, field.kind), default=field.default,
                choices=sorted(field.choices) if field.choices else None)


def _spec_shape(spec):
    return dict(type=ANSIBLE_TYPES[spec.get("type", "str")], default=spec.get("default"),
                choices=sorted(spec["choices"]) if spec.get("choices") else None)


def _schema_pairs(monkeypatch):
    """(where, module option spec, engine schema field) for every module option that feeds the schema."""
    schema = Engine().config
    specs = dict((name, argument_spec(name, monkeypatch)) for name in MODULES)
    pairs = []
    for module, spec in specs.items():
        for name in schema.CONNECTION_FIELDS:
            if name in spec:
                pairs.append(("%s.%s" % (module, name), spec[name], schema.CONNECTION_FIELDS[name]))
        for name in ("backup_root", "log_dir", "metrics_dir"):
            if name in spec:
                pairs.append(("%s.%s" % (module, name), spec[name], schema.TOP_FIELDS[name]))
        if "bucket" in spec:
            pairs += [("%s.%s" % (module, k), spec[k], schema.OFFSITE_FIELDS[k]) for k in spec if k in schema.OFFSITE_FIELDS
                      and k != "retention"]
        if "offsite" in spec:
            nested = spec["offsite"]["options"]
            pairs += [("%s.offsite.%s" % (module, k), v, schema.OFFSITE_FIELDS[k]) for k, v in nested.items() if k != "host"]
        if "retention" in spec:
            pairs += [("%s.retention.%s" % (module, k), v, schema.RETENTION_FIELDS[k])
                      for k, v in spec["retention"]["options"].items()]
        if "webhook_url" in spec:
            pairs += [("%s.%s" % (module, k), spec[k], schema.NOTIFY_FIELDS[k]) for k in ("webhook_url", "webhook_format")]
        if "notify_on_success" in spec:
            pairs.append(("%s.notify_on_success" % module, spec["notify_on_success"], schema.NOTIFY_FIELDS["on_success"]))
    dump = specs["dump"]
    pairs += [("dump." + k, dump[k], schema.PROFILE_FIELDS[k]) for k in dump if k in schema.PROFILE_FIELDS and k != "db"]
    pairs += [("dump.encryption", dump["encryption"], schema.ENCRYPTION_FIELDS["mode"]),
              ("dump.recipients", dump["recipients"], schema.ENCRYPTION_FIELDS["recipients"])]
    return pairs


def test_module_options_match_the_engine_schema(monkeypatch):
    pairs = _schema_pairs(monkeypatch)
    assert len(pairs) > 60  # every module that feeds the schema was looked at
    drift = dict((where, (_spec_shape(spec), _field_shape(field))) for where, spec, field in pairs
                 if _spec_shape(spec) != _field_shape(field))
    assert drift == {}


def test_connection_and_offsite_specs_cover_the_schema(monkeypatch):
    schema = Engine().config
    helpers = Engine().module
    assert sorted(helpers.connection_argument_spec()) == sorted(schema.CONNECTION_FIELDS)
    # enabled and retention are settings of a scheduled run's configuration, not of one module call
    assert sorted(helpers.offsite_argument_spec()) == sorted(set(schema.OFFSITE_FIELDS) - {"enabled", "retention"})
    assert sorted(argument_spec("offsite", monkeypatch)["retention"]["options"]) == sorted(schema.RETENTION_FIELDS)
    # what one task posts to; on_success, the dead-man's switch and the timeout belong to scheduled runs
    assert sorted(helpers.notify_argument_spec()) == ["webhook_format", "webhook_url"]
    assert set(helpers.notify_argument_spec()) <= set(schema.NOTIFY_FIELDS)


def test_webhook_options_are_documented_once_in_the_notify_fragment(monkeypatch):
    """Every module taking webhook_url takes both options from notify_argument_spec() and documents them only through
    doc fragment lifeboat.backup.notify."""
    helpers = Engine().module
    shared = helpers.notify_argument_spec()
    takers = []
    for name in MODULES:
        spec = argument_spec(name, monkeypatch)
        if not set(shared) & set(spec):
            continue
        takers.append(name)
        assert dict((k, spec[k]) for k in shared) == shared, name
        sys.path.insert(0, COLLECTIONS)
        try:
            doc = yaml.safe_load(importlib.import_module("ansible_collections.lifeboat.backup.plugins.modules." + name).DOCUMENTATION)
        finally:
            sys.path.remove(COLLECTIONS)
        assert "lifeboat.backup.notify" in doc["extends_documentation_fragment"], name
        assert not set(shared) & set(doc.get("options") or {}), name
    assert takers == ["drill", "rotate_offsite_key", "rotate_password"]


def test_secrets_are_no_log_in_every_module(monkeypatch):
    secrets = {"login_password", "scratch_login_password", "access_key", "secret_key", "session_token", "webhook_url"}
    leaks = []
    for name in MODULES:
        spec = argument_spec(name, monkeypatch)
        nested = dict(("offsite." + k, v) for k, v in (spec.get("offsite") or {}).get("options", {}).items())
        for option, entry in list(spec.items()) + list(nested.items()):
            if option.split(".")[-1] in secrets and not entry.get("no_log"):
                leaks.append("%s.%s" % (name, option))
    assert leaks == []


# Names that mean something else in community.postgresql and amazon.aws (design: no option may).
FOREIGN_MEANING = {"target": "postgresql_db's dump file", "profile": "amazon.aws's AWS named profile"}


def test_no_option_means_something_else_than_in_the_collections_users_know(monkeypatch):
    clashes = []
    for name in MODULES:
        for option, entry in argument_spec(name, monkeypatch).items():
            for alias in entry.get("aliases") or []:
                if alias in FOREIGN_MEANING:
                    clashes.append("%s.%s alias %s" % (name, option, alias))
    assert clashes == []
    # lifeboat's profile is the backup set everywhere; the AWS one is aws_profile, as amazon.aws's alias names it
    assert "aws_profile" in argument_spec("offsite", monkeypatch)
    assert "aws_profile" in argument_spec("restore", monkeypatch)["offsite"]["options"]


def test_action_group_holds_the_modules_that_take_the_connection_options(monkeypatch):
    """module_defaults for group/lifeboat.backup.lifeboat hand every member all of these options: each must take them."""
    with open(os.path.join(REPO, "meta", "runtime.yml"), encoding="utf-8") as handle:
        group = yaml.safe_load(handle)["action_groups"]["lifeboat"]
    helpers = Engine().module
    shared = set(helpers.connection_argument_spec()) | set(helpers.storage_argument_spec())
    connecting = [name for name in MODULES if shared <= set(argument_spec(name, monkeypatch))]
    assert sorted(group) == connecting == ["drill", "dump", "restore", "rotate_password", "verify"]
