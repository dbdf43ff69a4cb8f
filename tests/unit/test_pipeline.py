"""The process pipeline with plain programs: hashing ends, failing steps named, signals, early exits, bad sinks."""

import errno
import hashlib
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

DATA = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk and more than a pipe buffer


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.bin"
    path.write_bytes(DATA)
    return str(path)


def step(engine, name, *argv):
    return engine.pipeline.Step(name, list(argv))


def python(engine, name, code):
    return step(engine, name, sys.executable, "-c", code)


def pipe(engine, steps, sink=None, follow=None, **kwargs):
    """The pipeline entry point for these ends: into a file, following a growing file, or neither."""
    if follow:
        return engine.pipeline.follow(steps, kwargs.pop("source"), follow, sink=sink, **kwargs)
    if sink:
        return engine.pipeline.to_file(steps, sink, **kwargs)
    return engine.pipeline.run(steps, **kwargs)


def failure(engine, steps, **kwargs):
    with pytest.raises(engine.pipeline.PipelineError) as caught:
        pipe(engine, steps, **kwargs)
    return caught.value


def test_source_and_sink_are_counted_and_hashed(engine, source, tmp_path):
    sink = str(tmp_path / "out.bin")
    result = pipe(engine, [step(engine, "cat", "cat"), step(engine, "cat2", "cat")], source=source, sink=sink)
    digest = hashlib.sha256(DATA).hexdigest()
    assert (result["source"].bytes, result["source"].sha256) == (len(DATA), digest)
    assert (result["sink"].bytes, result["sink"].sha256) == (len(DATA), digest)
    with open(sink, "rb") as handle:
        assert handle.read() == DATA
    assert stat.S_IMODE(os.stat(sink).st_mode) == 0o600


def test_a_transforming_chain(engine, source, tmp_path):
    sink = str(tmp_path / "out.zst")
    result = pipe(engine, [step(engine, "zstd", "zstd", "-q", "-c", "-1")], source=source, sink=sink)
    plain = subprocess.run(["zstd", "-d", "-q", "-c", sink], capture_output=True, check=True).stdout
    assert plain == DATA and result["sink"].bytes == os.path.getsize(sink) < len(DATA) + 1024


def test_failing_step_is_named_with_its_status(engine, tmp_path):
    error = failure(engine, [step(engine, "false", "false")], sink=str(tmp_path / "out"))
    assert (error.step, error.detail, error.storage) == ("false", "exited with status 1", False)
    assert str(error) == "false exited with status 1"


def test_failing_middle_step_is_named_with_its_stderr(engine, source, tmp_path):
    steps = [step(engine, "reader", "cat"),
             python(engine, "middle", "import sys; sys.stdin.buffer.read(10); sys.stderr.write('boom\\non two lines\\n'); sys.exit(3)"),
             step(engine, "writer", "cat")]
    error = failure(engine, steps, source=source, sink=str(tmp_path / "out"))
    # 'reader' died of SIGPIPE because 'middle' stopped reading: the genuine failure is the one named
    assert str(error) == "middle exited with status 3: boom on two lines"


def test_step_killed_by_a_signal(engine, tmp_path):
    steps = [python(engine, "suicidal", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), step(engine, "cat", "cat")]
    error = failure(engine, steps, sink=str(tmp_path / "out"))
    assert str(error) == "suicidal was killed by signal 9"


def test_early_exit_of_the_last_step(engine, source, tmp_path):
    """``head -c`` stops reading: fine when the caller said so, a failure otherwise (the data was not all read)."""
    sink = str(tmp_path / "head")
    result = pipe(engine, [step(engine, "cat", "cat"), step(engine, "head", "head", "-c", "100")],
                  source=source, sink=sink, early_exit_ok=True)
    assert result["sink"].bytes == 100 and result["sink"].sha256 == hashlib.sha256(DATA[:100]).hexdigest()
    error = failure(engine, [step(engine, "cat", "cat"), step(engine, "head", "head", "-c", "100")],
                    source=source, sink=str(tmp_path / "head2"))
    assert str(error) == "cat was killed by signal 13"


def test_early_exit_does_not_hide_a_real_failure(engine, source):
    steps = [step(engine, "cat", "cat"), python(engine, "lister", "import sys; sys.stdin.buffer.read(5); sys.exit(2)")]
    assert str(failure(engine, steps, source=source, early_exit_ok=True)) == "lister exited with status 2"


def test_program_that_does_not_exist(engine, tmp_path):
    error = failure(engine, [step(engine, "ghost", str(tmp_path / "no-such-program"))])
    assert str(error) == "ghost could not be started: No such file or directory"


def test_long_stderr_is_cut_to_its_end(engine):
    code = "import sys; sys.stderr.write('x' * 10000 + ' the end'); sys.exit(1)"
    error = failure(engine, [python(engine, "noisy", code)])
    assert error.detail.endswith("x the end") and len(error.detail) < engine.pipeline.STDERR_LIMIT + 100


def test_missing_source(engine, tmp_path):
    error = failure(engine, [step(engine, "cat", "cat")], source=str(tmp_path / "gone"), sink=str(tmp_path / "out"))
    assert error.storage and error.step == "reading"
    assert str(error) == "reading failed on %s: No such file or directory" % (tmp_path / "gone")


def test_sink_in_a_missing_directory(engine, source, tmp_path):
    sink = str(tmp_path / "missing" / "out")
    error = failure(engine, [step(engine, "cat", "cat")], source=source, sink=sink)
    assert error.storage and error.step == "writing"
    assert str(error) == "writing failed on %s: No such file or directory" % sink


def test_sink_never_overwrites(engine, source, tmp_path):
    sink = tmp_path / "exists"
    sink.write_bytes(b"earlier")
    error = failure(engine, [step(engine, "cat", "cat")], source=source, sink=str(sink))
    assert str(error) == "writing failed on %s: File exists" % sink and sink.read_bytes() == b"earlier"


def test_sink_on_a_full_filesystem(engine, source, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        sink = str(mount / "out")
        error = failure(engine, [step(engine, "cat", "cat")], source=source, sink=sink)
        assert error.storage and str(error) == "writing failed: no space left on device writing %s" % sink
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_sink_is_written_out_while_it_grows(engine, source, tmp_path, monkeypatch):
    """Writeback starts every WRITEBACK bytes on consecutive ranges, so the closing fsync has little left to do."""
    calls = []
    monkeypatch.setattr(engine.pipeline, "WRITEBACK", 1 << 20)
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: calls.append((offset, length, advice)))
    sink = str(tmp_path / "out.bin")
    pipe(engine, [step(engine, "cat", "cat")], source=source, sink=sink)
    assert len(calls) >= 2 and all(c[1] >= 1 << 20 and c[2] == os.POSIX_FADV_DONTNEED for c in calls)
    assert [c[0] for c in calls] == [sum(c[1] for c in calls[:i]) for i in range(len(calls))]  # no gaps, no overlaps
    assert sum(c[1] for c in calls) <= len(DATA) and open(sink, "rb").read() == DATA


def test_scratch_sink_is_watched_while_it_is_written(engine, tmp_path):
    """The watcher gets every byte, in order, and gets them before the writer has finished."""
    writer = ("import sys, time\nfor i in range(8):\n    sys.stdout.buffer.write(bytes([i]) * 300000); sys.stdout.flush(); time.sleep(0.05)")
    seen = []
    sink = str(tmp_path / "scratch")
    engine.pipeline.to_watched([python(engine, "writer", writer)], sink, seen.append)
    assert b"".join(seen) == open(sink, "rb").read() == b"".join(bytes([i]) * 300000 for i in range(8))
    assert len(seen) > 1


def test_a_file_still_being_written_is_followed_to_its_end(engine, tmp_path):
    """A second pipeline reads what the first writes, while it writes it, and stops at the end once told it came."""
    writer = ("import sys, time\nfor i in range(8):\n    sys.stdout.buffer.write(bytes([i]) * 300000); sys.stdout.flush(); time.sleep(0.05)")
    growing, copied = str(tmp_path / "growing"), str(tmp_path / "copied")
    written = threading.Event()
    follower = threading.Thread(target=engine.pipeline.follow, args=([step(engine, "cat", "cat")], growing, written),
                                kwargs=dict(sink=copied))
    follower.start()  # before the file exists: it waits for it
    try:
        engine.pipeline.to_scratch([python(engine, "writer", writer)], growing)
        assert follower.is_alive()  # the end of the file is not the end of the data until the writer says so
    finally:
        written.set()
        follower.join()
    assert open(copied, "rb").read() == b"".join(bytes([i]) * 300000 for i in range(8))


def test_a_followed_file_that_never_comes_is_an_error(engine, tmp_path):
    done = threading.Event()
    done.set()
    caught = failure(engine, [step(engine, "cat", "cat")], source=str(tmp_path / "never"), follow=done)
    assert caught.step == "reading" and "never" in caught.detail


def test_a_pipeline_stopped_from_another_thread(engine, source):
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(engine.pipeline.Stopped):
        pipe(engine, [step(engine, "cat", "cat"), step(engine, "sleeper", "sleep", "30")], source=source, stop=stop)


def test_a_pipeline_stopped_while_its_sink_waits_for_output(engine, tmp_path):
    """The copy into the sink blocks reading a step that writes nothing: stopping kills the steps, which ends it."""
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(engine.pipeline.Stopped):
        pipe(engine, [step(engine, "silent", "sleep", "30"), step(engine, "cat", "cat")], sink=str(tmp_path / "out"),
             stop=stop)
    assert time.monotonic() - started < 10


def test_following_where_sendfile_is_refused(engine, tmp_path, monkeypatch):
    """Some filesystems cannot sendfile: the bytes then go through a buffer, all of them."""
    def refuse(*args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(engine.pipeline.os, "sendfile", refuse)
    path, copied = tmp_path / "whole", str(tmp_path / "copied")
    path.write_bytes(DATA)
    done = threading.Event()
    done.set()
    engine.pipeline.follow([step(engine, "cat", "cat")], str(path), done, sink=copied)
    assert open(copied, "rb").read() == DATA


def test_age_boilerplate_is_left_out_of_the_message(engine, source, tmp_path):
    """age ends every error with 'report unexpected or unhelpful errors at <url>': noise in an operator's message."""
    identity = str(tmp_path / "identity.txt")
    subprocess.run(["age-keygen", "-o", identity], check=True, capture_output=True)
    error = failure(engine, [step(engine, "age", "age", "-d", "-i", identity)], source=source, sink=str(tmp_path / "out"))
    assert error.detail.startswith("exited with status 1: age: error:"), error.detail
    assert "report" not in error.detail and "filippo.io" not in error.detail and not error.detail.endswith(" ")
