"""Pure parts of offsite: settings, key layout, comparing a stored object with the manifest, Object Lock dates."""

import datetime
import sys

import pytest

SHA = "ab" * 32
ITEM = {"name": "shop.dump.zst.age", "bytes": 1234, "sha256": SHA}


def _config(engine, offsite=None, profile_offsite=None, retention=None):
    return engine.config.validate_config({
        "host": "db1",
        "offsite": offsite if offsite is not None else {"bucket": "backups"},
        "profiles": {"shop": {"db": "shop", "offsite": profile_offsite or {}, "retention": retention or {}}},
    })


def test_profile_overrides_the_top_level_target(engine):
    config = _config(engine, {"bucket": "backups", "prefix": "x", "retention": {"keep_daily": 7}},
                     {"prefix": "payments", "retention": {"keep_last": 3}})
    section = engine.remote.target(config, "shop")
    assert section["bucket"] == "backups" and section["prefix"] == "payments"
    assert section["retention"]["keep_daily"] == 7 and section["retention"]["keep_last"] == 3
    assert engine.remote.target(config, "other-host-profile")["prefix"] == "x"  # a DR host's unknown profile
    assert engine.remote.enabled(config, "shop")
    assert not engine.remote.enabled(_config(engine, profile_offsite={"enabled": False}), "shop")
    assert not engine.remote.enabled(_config(engine, offsite={}), "shop")


@pytest.mark.parametrize("offsite, message", [
    ({}, "offsite.bucket: not set"),
    ({"bucket": "b", "sse_kms_key_id": "k"}, "needs server_side_encryption 'aws:kms'"),
    ({"bucket": "b", "object_lock_mode": "COMPLIANCE"}, "object_lock_mode and object_lock_days go together"),
])
def test_target_refuses_incomplete_settings(engine, offsite, message):
    with pytest.raises(engine.errors.ConfigError, match=message):
        engine.remote.target(_config(engine, offsite), "shop")


def test_part_size_has_the_s3_minimum(engine):
    with pytest.raises(engine.errors.ConfigError, match="offsite.part_size_mb: must be between 5 and 5120"):
        _config(engine, {"bucket": "b", "part_size_mb": 1})


@pytest.mark.parametrize("prefix, key", [
    ("lifeboat", "lifeboat/db1/shop/20261122T020000Z/manifest.json"),
    ("/a/b/", "a/b/db1/shop/20261122T020000Z/manifest.json"),
    ("", "db1/shop/20261122T020000Z/manifest.json"),
])
def test_layout_mirrors_the_local_one(engine, prefix, key):
    location = engine.remote.Location({"prefix": prefix}, "db1", "shop")
    assert location.key("20261122T020000Z", "manifest.json") == key


def test_host_must_be_usable_in_a_key(engine):
    with pytest.raises(engine.errors.ConfigError, match="cannot be part of an object key"):
        engine.remote.Location({"prefix": "p"}, "../etc", "shop")


def _head(size=1234, sha=SHA, checksum=None):
    return {"ContentLength": size, "Metadata": {"lifeboat-sha256": sha}, "ChecksumSHA256": checksum}


def test_stored_object_is_compared_with_the_manifest(engine):
    state = engine.push._remote_state
    b64 = engine.s3.hex_to_b64(SHA)
    assert state(None, ITEM) == "missing"
    assert state(_head(checksum=b64), ITEM) == "ok"
    assert state(_head(checksum="Zm9v-3"), ITEM) == "ok"  # multipart: checked against the parts at upload
    assert state(_head(size=1233), ITEM) == "is 1233 bytes, the manifest records 1234"
    assert state(_head(sha="cd" * 32), ITEM) == "was not uploaded from this artifact"
    assert state(_head(checksum=engine.s3.hex_to_b64("cd" * 32)), ITEM) == "has a SHA-256 different from the manifest's"


def test_object_lock_dates(engine):
    now = datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)
    locked = engine.s3.locked
    assert locked(None, now) is None
    assert locked({"ObjectLockRetainUntilDate": now - datetime.timedelta(seconds=1)}, now) is None
    assert locked({"ObjectLockRetainUntilDate": now + datetime.timedelta(days=1)}, now) == "2026-11-23T00:00:00Z"
    assert locked({"ObjectLockLegalHoldStatus": "ON"}, now) == "legal hold"
    assert engine.s3.lock_until(30, now) == now + datetime.timedelta(days=30)


def test_remote_policy_defaults_to_the_profiles(engine):
    policy_for = engine.offsite_prune.policy_for
    assert policy_for(_config(engine, retention={"keep_daily": 7}), "shop") == {"keep_daily": 7}
    config = _config(engine, {"bucket": "b", "retention": {"keep_monthly": 12}}, retention={"keep_daily": 7})
    assert policy_for(config, "shop") == {"keep_monthly": 12}
    assert policy_for(_config(engine), "shop") is None


def test_missing_boto3_is_one_clear_error(engine, monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    with pytest.raises(engine.errors.OffsiteError, match="need the Python package boto3 .*python3-boto3"):
        engine.s3.Remote({"bucket": "b"})


def test_doc_fragment_source_repeats_the_target_options():
    """ansible-test reads doc fragments as literals, so SOURCE repeats DOCUMENTATION's options: keep them equal."""
    import importlib.util
    import os

    import yaml

    path = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "doc_fragments", "offsite.py")
    spec = importlib.util.spec_from_file_location("offsite_fragment", path)
    fragment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fragment)
    target = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    nested = yaml.safe_load(fragment.ModuleDocFragment.SOURCE.replace("O(offsite.", "O("))["options"]["offsite"]["suboptions"]
    nested.pop("host")
    assert nested == target
