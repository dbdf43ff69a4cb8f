"""Offsite key rotation, the logic without a store: when a key is due, the two-keys refusal, the consumer files,
and what the action does with an IAM that answers from memory (the real one: tests/integration)."""

import json

import pytest
import yaml

from tests.conftest import Engine

DAY = 86400


@pytest.fixture
def engine():
    return Engine()


def test_a_key_younger_than_max_age_is_not_due(engine):
    due = engine.rotate_offsite_key.due
    now = 1_800_000_000
    assert not due(now - 29 * DAY, now, 30 * DAY)
    assert due(now - 30 * DAY, now, 30 * DAY)
    assert due(now - 29 * DAY, now, 30 * DAY, force=True)
    assert due(None, now, 30 * DAY)  # a key whose age nobody knows is rotated
    assert engine.rotate_offsite_key.next_due(now - DAY, now, 30 * DAY) == "2027-02-13T08:00:00Z"  # created + max_age
    assert engine.rotate_offsite_key.next_due(None, now, 30 * DAY) == "2027-01-15T08:00:00Z"  # unknown: due now


def test_two_keys_refusal_names_the_limit_the_spare_key_and_the_fix(engine):
    keys = [{"id": "AKIAOLDKEYINUSE00001"}, {"id": "AKIASPAREKEY00000002"}]
    message = engine.rotate_offsite_key.two_keys_refusal("backup-db1", keys, "AKIAOLDKEYINUSE00001")
    assert "IAM user backup-db1 already has 2 access keys (AKIAOLDKEYINUSE00001, AKIASPAREKEY00000002), AWS's limit" in message
    assert "aws iam delete-access-key --user-name backup-db1 --access-key-id AKIASPAREKEY00000002" in message


def consumer(engine, **item):
    return engine.consumers.normalize(item, engine.rotate_offsite_key.ENV_KEYS)


def test_lifeboat_config_gets_the_new_key_wherever_the_old_one_was(engine, tmp_path):
    path = tmp_path / "lifeboat.yml"
    old = yaml.safe_dump({
        "connection": {"login_user": "lifeboat"},
        "offsite": {"bucket": "b", "access_key": "AKIAOLD", "secret_key": "old-secret"},
        "profiles": {"shop": {"db": "shop", "offsite": {"access_key": "AKIAOLD", "secret_key": "old-secret"}},
                     "crm": {"db": "crm", "offsite": {"access_key": "AKIAOTHERUSER", "secret_key": "other"}}},
    }).encode()
    item = consumer(engine, type="lifeboat_config", path=str(path))
    new = engine.consumers.render_offsite_key(item, old, "AKIAOLD", "AKIANEW", "new-secret")
    data = yaml.safe_load(new)
    assert data["offsite"] == {"bucket": "b", "access_key": "AKIANEW", "secret_key": "new-secret"}
    assert data["profiles"]["shop"]["offsite"] == {"access_key": "AKIANEW", "secret_key": "new-secret"}
    assert data["profiles"]["crm"]["offsite"]["access_key"] == "AKIAOTHERUSER"
    assert data["connection"] == {"login_user": "lifeboat"}
    assert ("AKIANEW", "new-secret") in engine.consumers.offsite_keys_of(item, new)


def test_a_file_holding_only_another_users_key_is_not_rewritten(engine, tmp_path):
    item = consumer(engine, type="lifeboat_config", path=str(tmp_path / "lifeboat.yml"))
    other = json.dumps({"offsite": {"access_key": "AKIAOTHERUSER", "secret_key": "x"}}).encode()
    with pytest.raises(engine.errors.ConfigError, match="not AKIAOLD, the key being rotated"):
        engine.consumers.render_offsite_key(item, other, "AKIAOLD", "AKIANEW", "new-secret")
    empty = engine.consumers.render_offsite_key(item, None, "AKIAOLD", "AKIANEW", "new-secret")
    assert yaml.safe_load(empty) == {"offsite": {"access_key": "AKIANEW", "secret_key": "new-secret"}}


def test_env_file_keeps_other_lines(engine, tmp_path):
    item = consumer(engine, type="env", path=str(tmp_path / "offsite.env"), key="AWS_SECRET_ACCESS_KEY",
                    user_key="AWS_ACCESS_KEY_ID")
    new = engine.consumers.render_offsite_key(item, b"AWS_REGION=eu-central-1\nAWS_ACCESS_KEY_ID=AKIAOLD\n", "AKIAOLD",
                                              "AKIANEW", "s3cret")
    assert new.decode().splitlines() == ["AWS_REGION=eu-central-1", "AWS_SECRET_ACCESS_KEY=s3cret", "AWS_ACCESS_KEY_ID=AKIANEW"]


class FakeKeys:
    """An IAM answering from memory: which calls were made, never a network."""

    endpoint = "memory"
    keys = []
    calls = []

    def __init__(self, target, admin=None, endpoint_url=None):
        self.admin = admin

    def caller(self):
        return "backup-db1"

    def exists(self, user):
        return True

    def list(self, user):
        FakeKeys.calls.append("list")
        return [dict(k) for k in FakeKeys.keys]

    def create(self, user):
        FakeKeys.calls.append("create")
        return "AKIANEWKEY0000000001", "new-secret"

    def delete(self, user, key_id):
        FakeKeys.calls.append("delete %s" % key_id)


def config_for(engine, tmp_path, key_id="AKIAOLDKEYINUSE00001"):
    path = tmp_path / "lifeboat.yml"
    path.write_text(json.dumps({"backup_root": str(tmp_path / "backups"),
                                "offsite": {"bucket": "b", "access_key": key_id, "secret_key": "old-secret"}}))
    path.chmod(0o600)
    return engine.config.load_config_file(str(path)), str(path)


@pytest.fixture
def fake_iam(engine, monkeypatch):
    monkeypatch.setattr(engine.iam, "Keys", FakeKeys)
    FakeKeys.calls = []
    return FakeKeys


def test_a_young_key_is_left_alone_and_a_rerun_changes_nothing(engine, tmp_path, fake_iam):
    import time

    fake_iam.keys = [{"id": "AKIAOLDKEYINUSE00001", "status": "Active", "created": time.time() - 3 * DAY}]
    config, path = config_for(engine, tmp_path)
    before = open(path, "rb").read()
    result = engine.rotate_offsite_key.rotate_key(config, config_path=path)
    assert not result["changed"] and not result["due"] and result["user"] == "backup-db1"
    assert result["active_key_id"] == "AKIAOLDKEYINUSE00001" and result["retired_key_id"] is None
    assert fake_iam.calls == ["list"] and open(path, "rb").read() == before
    metrics = open(tmp_path / "backups" / ".metrics" / "lifeboat_credential_offsite_backup-db1.prom").read()
    assert 'lifeboat_credential_age_seconds{role="offsite:backup-db1"}' in metrics


def test_two_keys_are_refused_before_anything_is_created(engine, tmp_path, fake_iam):
    fake_iam.keys = [{"id": "AKIAOLDKEYINUSE00001", "status": "Active", "created": None},
                     {"id": "AKIASPAREKEY00000002", "status": "Inactive", "created": None}]
    config, path = config_for(engine, tmp_path)
    with pytest.raises(engine.errors.ConfigError, match="--access-key-id AKIASPAREKEY00000002"):
        engine.rotate_offsite_key.rotate_key(config, config_path=path)
    assert "create" not in fake_iam.calls


def test_a_key_that_is_not_the_users_is_refused(engine, tmp_path, fake_iam):
    fake_iam.keys = [{"id": "AKIASOMEONEELSE00001", "status": "Active", "created": None}]
    config, path = config_for(engine, tmp_path)
    with pytest.raises(engine.errors.ConfigError, match="is not a key of IAM user backup-db1"):
        engine.rotate_offsite_key.rotate_key(config, config_path=path)


def test_admin_credentials_need_the_user_named(engine, tmp_path):
    config, path = config_for(engine, tmp_path)
    with pytest.raises(engine.errors.ConfigError, match="user: name the IAM user"):
        engine.rotate_offsite_key.rotate_key(config, admin={"access_key": "AKIAADMIN", "secret_key": "x"}, config_path=path)


def test_without_a_key_given_the_one_in_the_hosts_configuration_is_rotated(engine, tmp_path, fake_iam):
    """A scheduled rotation passes no key: the inventory may still hold the one the last rotation deleted."""
    fake_iam.keys = [{"id": "AKIAKEYINTHEFILE0001", "status": "Active", "created": 0}]
    _config, path = config_for(engine, tmp_path, key_id="AKIAKEYINTHEFILE0001")
    given = engine.config.validate_config({"backup_root": str(tmp_path / "backups"), "offsite": {"bucket": "b"}})
    request = engine.rotate_offsite_key.Request(given, config_path=path)
    assert request.active_id == "AKIAKEYINTHEFILE0001" and request.target["secret_key"] == "old-secret"
    with pytest.raises(engine.errors.ConfigError, match="needs the key in use"):
        engine.rotate_offsite_key.Request(given, config_path=str(tmp_path / "missing.yml"))
