"""manifest.json: sealed with a SHA-256 of its canonical form, read back, damage detected."""

import json
import os
import stat

import pytest

DOCUMENT = {
    "backup_id": "20261122T020000Z",
    "profile": "shop",
    "database": "Shöp \"db\"",
    "consistent_at": "2026-11-22T02:00:00.123456Z",
    "server_version_num": 150020,
    "duration_seconds": 12.5,
    "artifacts": [
        {"name": "shop.dump.zst.age", "kind": "database", "bytes": 1234, "sha256": "ab" * 32, "encryption": "age"},
        {"name": "globals.sql.zst.age", "kind": "globals", "bytes": 321, "sha256": "cd" * 32, "encryption": "age"},
    ],
    "tables": [{"schema": "ünï cødé", "name": "Täblé 表", "rows": 505}, {"schema": "public", "name": "orders", "rows": 0}],
    "freshness": [],
}


@pytest.fixture
def written(engine, tmp_path):
    engine.manifest.write(str(tmp_path), DOCUMENT)
    return str(tmp_path)


def raw(directory):
    with open(os.path.join(directory, "manifest.json"), "rb") as handle:
        return handle.read()


def rewrite(directory, document, **dump_options):
    with open(os.path.join(directory, "manifest.json"), "w") as handle:
        json.dump(document, handle, **dump_options)


def damaged(engine, directory):
    with pytest.raises(engine.errors.VerifyError) as caught:
        engine.manifest.read(directory)
    return str(caught.value)


def test_write_then_read(engine, written):
    document = engine.manifest.read(written)
    assert dict((k, v) for k, v in document.items() if k not in ("format", "format_version", "manifest_sha256")) == DOCUMENT
    assert document["format"] == "lifeboat-backup" and document["format_version"] == 1
    assert len(document["manifest_sha256"]) == 64
    assert stat.S_IMODE(os.stat(os.path.join(written, "manifest.json")).st_mode) == 0o600
    assert os.listdir(written) == ["manifest.json"]  # no temporary file left


def test_seal_is_over_content_not_layout(engine, written):
    """Reformatted (other indentation, key order) it is the same manifest."""
    document = json.loads(raw(written))
    rewrite(written, dict(reversed(list(document.items()))), indent=None, ensure_ascii=False)
    assert engine.manifest.read(written)["tables"] == DOCUMENT["tables"]


@pytest.mark.parametrize("change", [
    lambda d: d["tables"][0].update(rows=506),
    lambda d: d["artifacts"][0].update(sha256="ef" * 32),
    lambda d: d.update(consistent_at="2026-11-22T03:00:00.123456Z"),
    lambda d: d.update(extra="added"),
    lambda d: d.pop("freshness"),
    lambda d: d.pop("manifest_sha256"),
    lambda d: d.update(manifest_sha256="0" * 64),
], ids=["rows", "artifact-sha", "time", "added-key", "removed-key", "no-seal", "wrong-seal"])
def test_any_change_is_detected(engine, written, change):
    document = json.loads(raw(written))
    change(document)
    rewrite(written, document, indent=2)
    assert damaged(engine, written) == "manifest of %s is damaged: its checksum does not match its content" % written


def test_one_flipped_byte_is_detected(engine, written):
    data = bytearray(raw(written))
    position = data.index(b'"rows": 505') + len(b'"rows": 50')
    data[position] ^= 0x01  # 505 -> 504
    with open(os.path.join(written, "manifest.json"), "wb") as handle:
        handle.write(bytes(data))
    assert "its checksum does not match its content" in damaged(engine, written)


@pytest.mark.parametrize("content, message", [
    (b"", "is damaged: not valid JSON"),
    (b'{"format": "lifeboat-backup", "tab', "is damaged: not valid JSON"),
    (b"\xff\xfe\x00garbage", "is damaged: not valid JSON"),
    (b"[1, 2]", "is not a lifeboat manifest"),
    (b'{"format": "something-else"}', "is not a lifeboat manifest"),
    (b'{"format": "lifeboat-backup", "format_version": 2}', "has format version 2; this lifeboat reads version 1"),
])
def test_not_a_manifest(engine, tmp_path, content, message):
    (tmp_path / "manifest.json").write_bytes(content)
    assert damaged(engine, str(tmp_path)).startswith("manifest of %s %s" % (tmp_path, message))


def test_missing_manifest_is_not_a_backup(engine, tmp_path):
    with pytest.raises(engine.errors.NotFoundError, match="has no manifest: it is not a complete backup$"):
        engine.manifest.read(str(tmp_path))


def test_parse_of_sealed_bytes(engine):
    sealed = engine.manifest.seal(dict(DOCUMENT, format="lifeboat-backup", format_version=1))
    assert engine.manifest.parse(json.dumps(sealed).encode(), "here") == sealed
    assert engine.manifest.seal(sealed) == sealed  # sealing twice changes nothing: the seal is not part of its input


def test_times(engine):
    text = engine.manifest.iso(1795312800.123456)  # 2026-11-22 02:00 UTC
    assert text == "2026-11-22T02:00:00.123456Z"
    assert engine.manifest.epoch_of(text) == pytest.approx(1795312800.123456, abs=1e-6)
    assert engine.manifest.backup_time(DOCUMENT) == engine.manifest.epoch_of("2026-11-22T02:00:00.123456Z")


def test_artifact_and_table_key(engine):
    assert engine.manifest.artifact(DOCUMENT, "globals")["name"] == "globals.sql.zst.age"
    assert engine.manifest.artifact(DOCUMENT, "nothing") is None
    assert engine.manifest.table_key(DOCUMENT["tables"][0]) == "ünï cødé.Täblé 表"
