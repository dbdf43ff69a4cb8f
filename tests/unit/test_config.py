"""Configuration validation: one clear message per problem, naming the key; defaults filled in."""

import pytest

RECIPIENT = "age1" + "q" * 58


def validate(engine, data):
    return engine.config.validate_config(data)


def error(engine, data):
    with pytest.raises(engine.errors.ConfigError) as caught:
        validate(engine, data)
    return str(caught.value)


def with_profile(**profile):
    return {"profiles": {"app": dict({"db": "app"}, **profile)}}


def test_defaults_are_filled_in(engine):
    config = validate(engine, {"profiles": {"app": {"db": "app"}}, "host": "db1"})
    assert config["backup_root"] == "/var/backups/lifeboat"
    assert config["log_dir"] == "/var/backups/lifeboat/.log" and config["metrics_dir"] == "/var/backups/lifeboat/.metrics"
    assert config["connection"]["login_port"] == 5432 and config["connection"]["maintenance_db"] == "postgres"
    assert config["encryption"] == {"mode": "age", "recipients": []}
    profile = config["profiles"]["app"]
    assert (profile["tables"], profile["exclude_tables"], profile["compression_level"], profile["min_tables"],
            profile["globals"], profile["freshness_columns"], profile["lock_wait_timeout"], profile["backup_timeout"]) == (
        [], [], 3, 1, True, {}, 600, 0)
    assert validate(engine, {"backup_root": "/srv/b/"})["log_dir"] == "/srv/b/.log"


def test_defaults_are_copies(engine):
    """A default list or dict handed to one profile must not leak into another."""
    config = validate(engine, {"profiles": {"a": {"db": "a"}, "b": {"db": "b"}}})
    config["profiles"]["a"]["tables"].append("x")
    config["profiles"]["a"]["freshness_columns"]["t"] = "c"
    assert config["profiles"]["b"]["tables"] == [] and config["profiles"]["b"]["freshness_columns"] == {}
    assert validate(engine, {"profiles": {"c": {"db": "c"}}})["profiles"]["c"]["tables"] == []


def test_numbers_given_as_strings_are_accepted(engine):
    config = validate(engine, {"connection": {"login_port": " 6543 "}, "profiles": {"app": {"db": "app", "compression_level": "7"}}})
    assert config["connection"]["login_port"] == 6543 and config["profiles"]["app"]["compression_level"] == 7


@pytest.mark.parametrize("data, message", [
    ([1, 2], "configuration: must be a mapping, got a list"),
    ({"bakup_root": "/x"}, "configuration: unknown key 'bakup_root' (expected one of: backup_root, connection, encryption, "),
    ({"backup_root": 5}, "backup_root: must be a string, got an integer"),
    ({"connection": "localhost"}, "connection: must be a mapping, got a string"),
    ({"connection": {"password": "x"}}, "connection: unknown key 'password' (expected one of: ca_cert, connect_params, connect_timeout, login_host, "),
    ({"connection": {"login_port": 0}}, "connection.login_port: must be between 1 and 65535, got 0"),
    ({"connection": {"login_port": True}}, "connection.login_port: must be an integer, got a boolean"),
    ({"connection": {"login_port": "5432x"}}, "connection.login_port: must be an integer, got a string"),
    ({"connection": {"connect_timeout": 0}}, "connection.connect_timeout: must be between 1 and 3600, got 0"),
    ({"encryption": {"mode": "gpg"}}, "encryption.mode: must be one of age, none, got 'gpg'"),
    ({"encryption": {"recipients": "age1abc"}}, "encryption.recipients: must be a list, got a string"),
    ({"encryption": {"recipients": [RECIPIENT, "age1short"]}},
     "encryption.recipients: is not an age public key (age1...) or SSH public key: 'age1short'"),
    ({"profiles": ["app"]}, "profiles: must be a mapping of profile name to profile"),
    ({"profiles": {"app": "app"}}, "profiles.app: must be a mapping, got a string"),
    ({"profiles": {"app": {}}}, "profiles.app.db: is required"),
    ({"profiles": {"app": None}}, "profiles.app.db: is required"),
    (with_profile(db=5), "profiles.app.db: must be a string, got an integer"),
    (with_profile(db=" "), "profiles.app.db: must not be empty"),  # libpq would quietly pick the user's database
    (with_profile(database="x"), "profiles.app: unknown key 'database' (expected one of: "),
    (with_profile(compression_level=-1), "profiles.app.compression_level: must be between 1 and 19, got -1"),
    (with_profile(compression_level=0), "profiles.app.compression_level: must be between 1 and 19, got 0"),
    (with_profile(compression_level=20), "profiles.app.compression_level: must be between 1 and 19, got 20"),
    (with_profile(compression_level=2.5), "profiles.app.compression_level: must be an integer, got float"),
    (with_profile(compression_threads=-1), "profiles.app.compression_threads: must be between 0 and 256, got -1"),
    (with_profile(min_tables=-1), "profiles.app.min_tables: must be at least 0, got -1"),
    (with_profile(lock_wait_timeout=-5), "profiles.app.lock_wait_timeout: must be at least 0, got -5"),
    (with_profile(backup_timeout=-1), "profiles.app.backup_timeout: must be at least 0, got -1"),
    (with_profile(tables="orders"), "profiles.app.tables: must be a list, got a string"),
    (with_profile(tables=["orders", ""]), "profiles.app.tables: must be a list of table names, got ''"),
    (with_profile(exclude_tables=[7]), "profiles.app.exclude_tables: must be a list of table names, got 7"),
    (with_profile(freshness_columns=["created_at"]), "profiles.app.freshness_columns: must be a mapping, got a list"),
    (with_profile(freshness_columns={"payments": ""}),
     "profiles.app.freshness_columns: column for table 'payments' must be a non-empty string"),
    (with_profile(globals="yes"), "profiles.app.globals: must be a boolean, got a string"),
    (with_profile(retention={"keep_last": -1}), "profiles.app.retention.keep_last: must be at least 0, got -1"),
    (with_profile(retention={"keep_within": "3 days"}),
     "profiles.app.retention.keep_within: must be a duration such as 36h, 7d or 1y, got '3 days'"),
    (with_profile(retention={"keep_forever": True}), "profiles.app.retention: unknown key 'keep_forever' (expected one of: "),
])
def test_one_message_naming_the_key(engine, data, message):
    text = error(engine, data)
    assert text.startswith(message), text
    assert "\n" not in text


@pytest.mark.parametrize("name", ["../x", "", "x" * 64, "a/b", "a b", ".x", "-x", "_x", "ü", 5])
def test_bad_profile_names(engine, name):
    expected = "bad profile name %r: use 1-63 letters, digits, '-' or '_', starting with a letter or digit" % (name,)
    assert error(engine, {"profiles": {name: {"db": "app"}}}) == expected
    config = validate(engine, with_profile())
    with pytest.raises(engine.errors.ConfigError) as caught:
        engine.config.get_profile(config, name)
    assert str(caught.value) == expected


@pytest.mark.parametrize("name", ["a", "x" * 63, "payments-hourly", "Full_2"])
def test_good_profile_names(engine, name):
    assert engine.config.get_profile(validate(engine, {"profiles": {name: {"db": "d"}}}), name)["db"] == "d"


def test_unknown_profile_lists_the_known_ones(engine):
    with pytest.raises(engine.errors.ConfigError, match=r"^unknown profile 'nope' \(known profiles: a, b\)$"):
        engine.config.get_profile(validate(engine, {"profiles": {"b": {"db": "b"}, "a": {"db": "a"}}}), "nope")
    with pytest.raises(engine.errors.ConfigError, match=r"\(known profiles: none configured\)$"):
        engine.config.get_profile(validate(engine, {}), "nope")


def test_missing_recipients_needs_an_explicit_none(engine):
    with pytest.raises(engine.errors.ConfigError, match="^encryption.recipients: no age recipients configured; "):
        engine.config.require_encryption(validate(engine, {}))
    assert engine.config.require_encryption(validate(engine, {"encryption": {"mode": "none"}}))["mode"] == "none"
    ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq user@host"
    assert validate(engine, {"encryption": {"recipients": [RECIPIENT, ssh]}})["encryption"]["recipients"] == [RECIPIENT, ssh]


def test_parse_duration(engine):
    assert engine.config.parse_duration("36h") == 129600
    assert engine.config.parse_duration(" 7d ") == 604800
    assert engine.config.parse_duration("1y") == 31536000
    assert engine.config.parse_duration("7 days") is None and engine.config.parse_duration("h") is None


def test_config_file_errors_name_the_file(engine, tmp_path):
    missing = tmp_path / "missing.yml"
    with pytest.raises(engine.errors.ConfigError, match="^configuration file %s does not exist$" % missing):
        engine.config.load_config_file(str(missing))
    broken = tmp_path / "broken.yml"
    broken.write_text("profiles: [unclosed\n")
    with pytest.raises(engine.errors.ConfigError, match="^configuration file %s is not valid YAML: " % broken):
        engine.config.load_config_file(str(broken))
    wrong = tmp_path / "wrong.yml"
    wrong.write_text("profiles:\n  app:\n    db: app\n    compression_level: 99\n")
    with pytest.raises(engine.errors.ConfigError) as caught:
        engine.config.load_config_file(str(wrong))
    assert str(caught.value) == "%s: profiles.app.compression_level: must be between 1 and 19, got 99" % wrong
    good = tmp_path / "good.yml"
    good.write_text("backup_root: /srv/backups\nprofiles:\n  app:\n    db: app\n")
    assert engine.config.load_config_file(str(good))["profiles"]["app"]["db"] == "app"
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert engine.config.load_config_file(str(empty))["profiles"] == {}


def test_profile_overrides_merge_over_top_level_sections(engine):
    config = validate(engine, {
        "notify": {"webhook_url": "https://hooks.example/x", "on_success": True},
        "profiles": {"app": {"db": "app", "notify": {"on_success": False}}, "other": {"db": "o"}},
    })
    assert engine.config.effective_section(config, "app", "notify")["on_success"] is False
    assert engine.config.effective_section(config, "app", "notify")["webhook_url"] == "https://hooks.example/x"
    assert engine.config.effective_section(config, "other", "notify")["on_success"] is True


@pytest.mark.parametrize("data, message", [
    (with_profile(retention={"keep_within": "9" * 300 + "d"}), "profiles.app.retention.keep_within: must be at most 100y"),
    (with_profile(retention={"keep_within": "36501d"}), "profiles.app.retention.keep_within: must be at most 100y"),
    (with_profile(backup_timeout=10 ** 20), "profiles.app.backup_timeout: must be between 0 and 2592000"),
    (with_profile(lock_wait_timeout=10 ** 20), "profiles.app.lock_wait_timeout: must be between 0 and 2147483"),
    ({"offsite": {"object_lock_days": 10 ** 20}}, "offsite.object_lock_days: must be between 1 and 36500"),
])
def test_huge_numbers_are_refused_by_the_validator(engine, data, message):
    """Bounds live in the one validator: a huge value is one message, never an OverflowError later or no limit."""
    assert error(engine, data).startswith(message)


def test_huge_keep_within_never_reaches_retention(engine):
    policy = validate(engine, with_profile(retention={"keep_within": "100y"}))["profiles"]["app"]["retention"]
    assert engine.config.parse_duration(policy["keep_within"]) == 100 * 31536000
    assert engine.config.parse_duration("9" * 300 + "d") is None


def test_a_modules_webhook_wins_over_the_hosts_and_the_hosts_dead_mans_switch_is_never_taken(engine):
    """rotate_password with profiles: its webhook_url, else the webhook of the host's lifeboat.yml (format and timeout
    too); the dead-man's switch watches the backups. The result is validated like lifeboat.yml's notify section."""
    helpers = engine.module
    host = validate(engine, {"notify": {"webhook_url": "https://hooks.example/host", "webhook_format": "discord",
                                        "timeout": 9, "deadman_url": "https://hc.example/ping/1", "on_success": True}})
    given = {"webhook_url": "https://hooks.example/task", "webhook_format": "slack"}
    assert helpers.webhook_of(given, host["notify"]) == given
    unset = {"webhook_url": None, "webhook_format": "json"}
    fallback = helpers.webhook_of(unset, host["notify"])
    assert fallback == {"webhook_url": "https://hooks.example/host", "webhook_format": "discord", "timeout": 9}
    assert helpers.webhook_of(unset, None) is None and helpers.webhook_of(unset, validate(engine, {})["notify"]) is None
    notify = helpers.build_config({}, notify=fallback)["notify"]
    assert notify["deadman_url"] is None and notify["on_success"] is False and notify["timeout"] == 9
    with pytest.raises(engine.errors.ConfigError, match=r"^notify.webhook_url: must be an http:// or https:// URL$"):
        helpers.build_config({}, notify=dict(given, webhook_url="file:///etc/shadow"))
