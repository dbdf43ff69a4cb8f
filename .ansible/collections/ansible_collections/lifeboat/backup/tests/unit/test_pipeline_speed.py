"""The pipeline's speed paths keep their guarantees: scratch sinks and big stdio buffers move the same bytes."""

import hashlib
import os
import stat

import pytest

DATA = os.urandom(2 * 1024 * 1024 + 5)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.bin"
    path.write_bytes(DATA)
    return str(path)


def test_scratch_sink_is_written_by_the_last_step_and_the_source_still_hashed(engine, source, tmp_path):
    sink = tmp_path / "archive"
    steps = [engine.pipeline.Step("zstd", ["zstd", "-q", "-c", "-1"]), engine.pipeline.Step("unzstd", ["zstd", "-d", "-q", "-c"])]
    result = engine.pipeline.run(steps, source=source, sink=str(sink), scratch_sink=True)
    assert sink.read_bytes() == DATA
    assert stat.S_IMODE(sink.stat().st_mode) == 0o600
    assert result["source"].sha256 == hashlib.sha256(DATA).hexdigest() and result["source"].bytes == len(DATA)
    assert result["sink"].bytes == len(DATA) and result["sink"].sha256 is None


def test_scratch_sink_never_overwrites_and_a_failing_step_is_named(engine, source, tmp_path):
    existing = tmp_path / "taken"
    existing.write_bytes(b"keep")
    with pytest.raises(engine.pipeline.PipelineError) as caught:
        engine.pipeline.run([engine.pipeline.Step("cat", ["cat"])], source=source, sink=str(existing), scratch_sink=True)
    assert caught.value.storage and existing.read_bytes() == b"keep"
    with pytest.raises(engine.pipeline.PipelineError) as caught:
        engine.pipeline.run([engine.pipeline.Step("unzstd", ["zstd", "-d", "-q", "-c"])], source=source,
                            sink=str(tmp_path / "new"), scratch_sink=True)
    assert caught.value.step == "unzstd"


def test_buffered_steps_get_big_stdio_buffers_and_the_same_bytes(engine, source, tmp_path):
    assert engine.pipeline._stdbuf(), "coreutils stdbuf should work on the test machines"
    sink = tmp_path / "env.txt"
    engine.pipeline.run([engine.pipeline.Step("env", ["env"], stdio="io")], sink=str(sink))
    assert "_STDBUF_O=1048576" in sink.read_text() and "_STDBUF_I=1048576" in sink.read_text()
    copy = tmp_path / "copy.bin"
    result = engine.pipeline.run([engine.pipeline.Step("cat", ["cat"], stdio="io")], source=source, sink=str(copy))
    assert copy.read_bytes() == DATA and result["sink"].sha256 == hashlib.sha256(DATA).hexdigest()


def test_without_stdbuf_programs_run_as_they_are(engine, monkeypatch):
    monkeypatch.setattr(engine.pipeline, "_STDBUF", [None])
    step = engine.pipeline.Step("pg_dump", ["pg_dump", "--format=custom"], stdio="o")
    assert engine.pipeline._argv(step) == ["pg_dump", "--format=custom"]
