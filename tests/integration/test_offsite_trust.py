"""The remote catalog trusts neither listings nor object metadata: real SeaweedFS on loopback.

A mock only injects the one fault SeaweedFS does not produce on demand: a listing that misses keys.
"""

import hashlib
import json
import os
import time

import pytest
from seaweed import SeaweedFS

HOST = "db1"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3):
    return s3.bucket()


@pytest.fixture
def config(pg, age_key, backup_root, shop_db, s3, bucket):
    return {
        "connection": pg.connection(),
        "backup_root": backup_root,
        "host": HOST,
        "encryption": {"mode": "age", "recipients": [age_key[1]]},
        "profiles": {"shop": {"db": shop_db}},
        "offsite": s3.target(bucket),
    }


def _prefix(backup_id):
    return "lifeboat/%s/shop/%s/" % (HOST, backup_id)


def _backup_and_push(cli, config):
    backup_id = json.loads(cli(config, "--json", "backup", "--profile", "shop", check=0).stdout)["id"]
    pushed = json.loads(cli(config, "--json", "push", "--profile", "shop", "--id", backup_id, check=0).stdout)["pushed"][0]
    assert pushed["changed"], pushed
    return pushed


def test_remote_prune_never_deletes_objects_of_a_backup_whose_manifest_the_listing_missed(engine, cli, config, s3, bucket,
                                                                                          monkeypatch):
    ids = [_backup_and_push(cli, config)["id"] for _round in range(3)]
    before = s3.keys(bucket)
    missed = tuple(_prefix(backup_id) + "manifest.json" for backup_id in ids[1:])
    real_list = engine.s3.Remote.list

    def partial_listing(self, prefix):  # the fault: a listing that left out the two newest manifests
        return dict((k, v) for k, v in real_list(self, prefix).items() if k not in missed)

    monkeypatch.setattr(engine.s3.Remote, "list", partial_listing)
    result = engine.offsite_prune.prune(engine.config.validate_config(config), "shop", policy={"keep_last": 10},
                                        via="test", now=time.time() + 3 * 86400)  # every leftover is days old
    monkeypatch.undo()
    assert s3.keys(bucket) == before, "objects of a backup whose manifest exists were deleted"
    assert result["leftovers_removed"] == [], result
    skipped = dict((s["id"], s["reason"]) for s in result["skipped"])
    for backup_id in ids[1:]:
        assert "manifest s3://%s/%smanifest.json exists though the listing missed it" % (bucket, _prefix(backup_id)) in skipped[backup_id]


def test_a_truncated_listing_page_without_a_continuation_token_is_an_error(engine, s3, bucket):
    client = s3.client()
    client.put_object(Bucket=bucket, Key="lifeboat/a", Body=b"x")
    remote = engine.s3.Remote(s3.target(bucket))
    real = remote.client.list_objects_v2

    def truncated(**kwargs):  # the fault: a store that says "more" and gives no way to get it
        page = real(**kwargs)
        page.pop("NextContinuationToken", None)
        return dict(page, IsTruncated=True)

    remote.client.list_objects_v2 = truncated
    with pytest.raises(engine.errors.OffsiteError, match="truncated page without a continuation token"):
        remote.list("lifeboat/")


def test_a_remote_manifest_under_another_id_is_damaged_and_latest_refuses_it(cli, config, s3, bucket):
    pushed = _backup_and_push(cli, config)
    client = s3.client()
    moved = "20991231T000000Z"  # newer than any real backup
    for key in s3.keys(bucket, _prefix(pushed["id"])):
        client.copy_object(Bucket=bucket, Key=_prefix(moved) + key.rsplit("/", 1)[1], CopySource={"Bucket": bucket, "Key": key})
    listed = dict((b["id"], b) for b in json.loads(cli(config, "--json", "remote-list", "--profile", "shop", check=0).stdout)["backups"])
    assert listed[pushed["id"]]["status"] == "complete"
    assert listed[moved]["status"] == "damaged" and "records backup_id %r" % pushed["id"] in listed[moved]["error"], listed
    refused = cli(config, "pull", "--profile", "shop", "--dest", os.path.join(config["backup_root"], "pulled"), check=6)
    assert "the newest backup of profile shop, %s, is damaged" % moved in refused.stderr, refused.stderr
    by_id = cli(config, "pull", "--profile", "shop", "--id", moved, "--dest", os.path.join(config["backup_root"], "pulled"), check=6)
    assert "records backup_id %r" % pushed["id"] in by_id.stderr, by_id.stderr


def test_a_remote_backup_copied_under_another_hosts_prefix_is_damaged_there(cli, config, s3, bucket):
    """db2 pulling "its" newest must not get db1's data: the manifest records db1."""
    pushed = _backup_and_push(cli, config)
    client = s3.client()
    for key in s3.keys(bucket, _prefix(pushed["id"])):
        client.copy_object(Bucket=bucket, Key=key.replace("lifeboat/%s/" % HOST, "lifeboat/db2/", 1),
                           CopySource={"Bucket": bucket, "Key": key})
    other = dict(config, host="db2")
    (listed,) = json.loads(cli(other, "--json", "remote-list", "--profile", "shop", check=0).stdout)["backups"]
    assert listed["id"] == pushed["id"] and listed["status"] == "damaged", listed
    assert "records host %r" % HOST in listed["error"], listed
    dest = os.path.join(config["backup_root"], "pulled")
    assert "has no complete backup" in cli(other, "pull", "--profile", "shop", "--dest", dest, check=10).stderr
    refused = cli(other, "pull", "--profile", "shop", "--id", pushed["id"], "--dest", dest, check=6)
    assert "records host %r" % HOST in refused.stderr, refused.stderr
    assert not os.path.exists(dest)


def test_push_reads_back_an_object_the_store_keeps_no_checksum_for_and_repairs_it(cli, config, s3, bucket):
    pushed = _backup_and_push(cli, config)
    client = s3.client()
    key = _prefix(pushed["id"]) + pushed["uploaded"][0]
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    size, metadata = head["ContentLength"], head["Metadata"]
    garbage = hashlib.sha256(b"not the backup").digest() * (size // 32 + 1)
    # Overwritten in place: same size, same metadata, put without ChecksumAlgorithm so no SHA-256 is kept.
    client.put_object(Bucket=bucket, Key=key, Body=garbage[:size], Metadata=metadata)
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == size and head["Metadata"] == metadata
    assert not head.get("ChecksumSHA256"), "the store kept a SHA-256: this test needs the no-checksum case"

    again = json.loads(cli(config, "--json", "push", "--profile", "shop", "--id", pushed["id"], check=0).stdout)["pushed"][0]
    assert again["changed"] and again["uploaded"] == [pushed["uploaded"][0], "manifest.json"], again
    assert "does not match" in again["remote_state"][pushed["uploaded"][0]], again["remote_state"]
    cli(config, "verify", "--profile", "shop", "--remote", "--level", "checksum", check=0)
    assert not json.loads(cli(config, "--json", "push", "--profile", "shop", "--id", pushed["id"], check=0).stdout)["pushed"][0]["changed"]
