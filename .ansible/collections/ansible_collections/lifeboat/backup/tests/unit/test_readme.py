"""README.md stays true to the code: every configuration key, every exit code, every module and CLI subcommand."""

import os
import re

import pytest
from conftest import REPO, Engine

README = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()


def section(title):
    """The text of the README section headed ``## title``."""
    match = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), README, re.M | re.S)
    assert match, "README has no section %r" % title
    return match.group(1)


def documented_keys(text):
    """First-column keys of the markdown tables in ``text`` (`a`, `b` cells hold several)."""
    keys = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


def test_commands_come_first():
    first_block = re.search(r"```\n(.*?)```", README, re.S).group(1)
    assert [line.split()[0:2] for line in first_block.strip().splitlines()] == [["make", "demo"], ["make", "test"]]


@pytest.mark.parametrize("fields", ["TOP_FIELDS", "CONNECTION_FIELDS", "PROFILE_FIELDS", "OFFSITE_FIELDS", "NOTIFY_FIELDS"])
def test_configuration_reference_lists_every_key(fields):
    schema = getattr(Engine().config, fields)
    reference = section("Configuration file reference")
    missing = sorted(set(schema) - documented_keys(reference))
    assert not missing, "README's configuration reference lacks %s keys %s" % (fields, missing)


def test_configuration_reference_lists_no_unknown_key():
    config = Engine().config
    known = set()
    for fields in (config.TOP_FIELDS, config.CONNECTION_FIELDS, config.PROFILE_FIELDS, config.OFFSITE_FIELDS,
                   config.NOTIFY_FIELDS, config.ENCRYPTION_FIELDS, config.RETENTION_FIELDS):
        known.update(fields)
    assert documented_keys(section("Configuration file reference")) <= known


def test_retention_and_encryption_keys_are_named():
    reference = section("Configuration file reference")
    config = Engine().config
    for key in list(config.RETENTION_FIELDS) + list(config.ENCRYPTION_FIELDS):
        assert "`%s`" % key in reference, key


def test_exit_codes_match_the_error_classes():
    errors = Engine().errors
    table = dict(re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", section("Exit codes"), re.M))
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.LifeboatError)]
    assert {str(c.exit_code): c.kind for c in classes} == table


def test_every_module_and_subcommand_is_documented():
    modules = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "plugins", "modules")) if f.endswith(".py"))
    for name in modules:
        assert "lifeboat.backup.%s" % name in README, name
    commands = Engine().cli.parser()._subparsers._group_actions[0].choices
    cli = section("The `lifeboat` command")
    for name in commands:
        assert "lifeboat %s" % name in cli, name
