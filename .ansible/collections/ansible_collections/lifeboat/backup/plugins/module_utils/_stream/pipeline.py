# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Process pipelines joined by OS pipes, with a hashing Python head or tail.

``pg_dump | zstd | age | tail`` without a shell: each program is started with
an argument list, its stdout is the next one's stdin, and Python only touches
the (compressed, encrypted) bytes at the end to count and hash them while
writing the file. Memory use is one buffer, whatever the database size.
Every exit status and stderr is checked; on any failure every process is
killed and the error names the step that failed first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading

CHUNK = 1 << 20
WRITEBACK = 32 << 20
STDIO_BUFFER = "1M"
F_SETPIPE_SZ = 1031  # Linux: larger pipes mean fewer context switches between stages
STDERR_LIMIT = 4000


class PipelineError(Exception):
    """A step failed: ``step`` names it, ``detail`` is its own explanation."""

    def __init__(self, step, detail, storage=False):
        super(PipelineError, self).__init__("%s %s" % (step, detail))
        self.step = step
        self.detail = detail
        self.storage = storage  # the local file could not be read or written


class Stopped(PipelineError):
    """The pipeline was stopped from outside (``run(stop=...)``): no step failed."""

    def __init__(self):
        super(Stopped, self).__init__("pipeline", "was stopped")


class Step:
    """One program. ``stdio``: which of its C stdio streams get 1 MiB buffers ("i", "o" or "io").

    pg_dump writes its archive to a pipe, and pg_restore reads one, through
    stdio buffers of 4 KiB: one system call and one wake-up of the other end
    per 4 KiB. Bigger buffers (coreutils ``stdbuf``) move the same bytes with
    a fraction of the CPU, which on a small host is time the compressor needs.
    """

    def __init__(self, name, argv, env=None, stdio=""):
        self.name = name
        self.argv = argv
        self.env = env
        self.stdio = stdio


class Result:
    def __init__(self, size, sha256):
        self.bytes = size
        self.sha256 = sha256


_STDBUF = []


def _stdbuf():
    """Path of a working ``stdbuf`` (it preloads libstdbuf.so), or None: then programs keep their own buffers."""
    if not _STDBUF:
        path = shutil.which("stdbuf", path=os.environ.get("PATH", "") + ":/usr/bin:/bin")
        try:
            works = path and subprocess.call([path, "-o" + STDIO_BUFFER, "true"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL) == 0
        except OSError:
            works = False
        _STDBUF.append(path if works else None)
    return _STDBUF[0]


def _argv(step):
    if step.stdio and _stdbuf():
        return [_stdbuf()] + ["-%s%s" % (stream, STDIO_BUFFER) for stream in step.stdio] + step.argv
    return step.argv


def _widen(fd):
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)
    except OSError:
        pass  # an older kernel or a lower pipe-max-size: default pipes still work


def _stderr_text(handle):
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - STDERR_LIMIT))
    return handle.read().decode("utf-8", "replace").strip()


def _is_pipe_victim(code, text):
    """A step that only died because a later step stopped reading."""
    return code in (-signal.SIGPIPE, 128 + signal.SIGPIPE) or "broken pipe" in text.lower()


def _copy(read_fd, write_fd, digest, durable=False):
    """Copy until EOF, hashing what passes; returns the byte count.

    ``durable``: the target is a file about to be fsynced; start writing it
    out every WRITEBACK bytes, so the final fsync does not wait for all of it.
    """
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = flushed = 0
    while True:
        n = os.readv(read_fd, [buf])
        if not n:
            return total
        digest.update(view[:n])
        total += n
        _write_all(write_fd, view[:n])
        if durable and total - flushed >= WRITEBACK:
            _start_writeback(write_fd, flushed, total - flushed)
            flushed = total


def _write_all(fd, chunk):
    while chunk:
        chunk = chunk[os.write(fd, chunk):]


def _start_writeback(fd, offset, length):
    """Linux starts writing dirty pages out on POSIX_FADV_DONTNEED, without waiting; elsewhere a no-op."""
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def _storage_detail(exc, path):
    if exc.errno == errno.ENOSPC:
        return "failed: no space left on device writing %s" % path
    if exc.errno == errno.EDQUOT:
        return "failed: disk quota exceeded writing %s" % path
    return "failed on %s: %s" % (path, exc.strerror or exc)


def run(steps, source=None, sink=None, early_exit_ok=False, scratch_sink=False, watch_sink=None, follow=None, stop=None):
    """Run ``steps`` joined by pipes.

    ``source``: a file fed (and hashed) into the first step's stdin.
    ``follow``: with ``source``, an Event: the file is still being written (by
    another pipeline, which sets the event when done); it is fed as it grows,
    until the event is set and its end is reached, and not hashed.
    ``sink``: a new file (created 0600, fsynced) receiving the last step's stdout.
    ``scratch_sink``: the sink is a working copy removed after use (a decrypted
    archive for pg_restore): the last step writes it directly, without passing
    every byte through Python, and it is neither hashed nor fsynced.
    ``watch_sink``: with ``scratch_sink``, a function given the sink's bytes,
    in order, while the last step is still writing them (a thread reads the
    file behind the writer, so the work overlaps with decoding).
    ``early_exit_ok``: the last step may stop reading once it has what it
    needs (``pg_restore --list``); the steps it leaves behind are not failures.
    ``stop``: an Event another thread may set to end the pipeline: its steps
    are killed and Stopped is raised.
    Returns ``{"source": Result, "sink": Result}`` for the ends that were given.
    Raises PipelineError naming the step that failed.
    """
    procs = []
    errs = []
    results = {}
    failure = []
    feeder = None
    watcher = None
    stopper = None
    finished = threading.Event()
    sink_fd = None
    try:
        if sink and scratch_sink:
            sink_fd = _open_sink(sink)
            if watch_sink:
                watcher = threading.Thread(target=_watch, args=(sink, finished, watch_sink, failure))
                watcher.start()
        prev = subprocess.PIPE if source else subprocess.DEVNULL
        for index, step in enumerate(steps):
            last = index == len(steps) - 1
            err = tempfile.TemporaryFile()
            errs.append(err)
            if not last:
                out = subprocess.PIPE
            elif sink:
                out = sink_fd if scratch_sink else subprocess.PIPE
            else:
                out = subprocess.DEVNULL
            try:
                proc = subprocess.Popen(
                    _argv(step),
                    stdin=prev,
                    stdout=out,
                    stderr=err,
                    env=step.env,
                    close_fds=True,
                    umask=0o077,
                )
            except OSError as exc:
                raise PipelineError(step.name, "could not be started: %s" % (exc.strerror or exc))
            if procs and procs[-1].stdout:
                procs[-1].stdout.close()  # only the child holds it now, so SIGPIPE reaches the writer
            procs.append(proc)
            if proc.stdout:
                _widen(proc.stdout.fileno())
                prev = proc.stdout

        if source:
            _widen(procs[0].stdin.fileno())
            if follow:
                feeder = threading.Thread(target=_follow, args=(source, procs[0].stdin, follow, failure))
            else:
                feeder = threading.Thread(target=_feed, args=(source, procs[0].stdin, results, failure))
            feeder.start()

        if stop is not None:
            stopper = threading.Thread(target=_stop_on, args=(stop, finished, procs))
            stopper.start()

        if sink and not scratch_sink:
            try:
                sink_fd = _open_sink(sink)
                digest = hashlib.sha256()
                size = _copy(procs[-1].stdout.fileno(), sink_fd, digest, durable=True)
                os.fsync(sink_fd)
            except OSError as exc:
                _kill(procs)
                raise PipelineError("writing", _storage_detail(exc, sink), storage=True)
            results["sink"] = Result(size, digest.hexdigest())
            procs[-1].stdout.close()

        _wait(procs, stop)
        _join(finished, feeder, watcher, stopper)
        _check(steps, procs, errs, failure, early_exit_ok)
        if sink and scratch_sink:
            results["sink"] = Result(os.fstat(sink_fd).st_size, None)
        return results
    except BaseException:
        _kill(procs)
        _join(finished, feeder, watcher, stopper)
        raise
    finally:
        if sink_fd is not None:
            os.close(sink_fd)
        for proc in procs:
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()
        for err in errs:
            err.close()


def _wait(procs, stop):
    for proc in procs:
        proc.wait()
    if stop is not None and stop.is_set():
        raise Stopped()


def _stop_on(stop, finished, procs):
    """Kill the steps once ``stop`` is set: the copy to the sink, blocked reading their output, then sees its end."""
    while not finished.is_set():
        if stop.wait(0.02):
            _kill(procs)
            return


def _open_sink(path):
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise PipelineError("writing", _storage_detail(exc, path), storage=True)


def _feed(path, pipe, results, failure):
    """Feed ``path`` into ``pipe``, hashing it."""
    def copy():
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as handle:
            size = _copy(handle.fileno(), pipe.fileno(), digest)
        results["source"] = Result(size, digest.hexdigest())

    _feeding(path, pipe, failure, copy)


def _feeding(path, pipe, failure, copy):
    """Run ``copy`` (``path`` into ``pipe``), then close the pipe, so the step reading it sees its end."""
    try:
        copy()
    except OSError as exc:
        if exc.errno != errno.EPIPE:  # a reader that stopped early is judged by its own exit status
            failure.append(PipelineError("reading", "failed on %s: %s" % (path, exc.strerror or exc), storage=True))
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _join(finished, *threads):
    """Tell the helper threads the processes are done, and wait for them."""
    finished.set()
    for thread in threads:
        if thread:
            thread.join()


def _read_behind(path, finished, step):
    """Process ``path`` while its writer is still at work, until ``finished`` is set and the end is reached.

    ``step(fd, position)`` handles what it can from ``position`` on and
    returns how many bytes that was (0 at the current end of the file).
    """
    while not os.path.exists(path) and not finished.wait(0.005):
        pass  # its writer has not created it yet
    pos = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            last_look = finished.is_set()  # set before this step: nothing more is coming after it
            done = step(handle.fileno(), pos)
            if done:
                pos += done
            elif last_look:
                return
            else:
                finished.wait(0.005)


def _watch(path, finished, consume, failure):
    """Give ``consume`` the bytes of ``path`` as they are written."""
    def step(fd, pos):
        chunk = os.pread(fd, CHUNK, pos)  # small reads: the consumer holds the GIL the feeder needs
        if chunk:
            consume(chunk)
        return len(chunk)

    try:
        _read_behind(path, finished, step)
    except Exception as exc:  # the pipeline goes on; its caller learns the watch failed
        failure.append(PipelineError("watching", "failed on %s: %s" % (path, exc), storage=True))


def _follow(path, pipe, finished, failure):
    """Feed ``path`` into ``pipe`` as it is written; the kernel moves the bytes where it can (``sendfile``)."""
    out = pipe.fileno()
    copying = []  # set once a filesystem turns sendfile down: then through a buffer

    def step(fd, pos):
        if not copying:
            try:
                return os.sendfile(out, fd, pos, CHUNK)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                copying.append(True)
        chunk = os.pread(fd, CHUNK, pos)
        _write_all(out, memoryview(chunk))
        return len(chunk)

    _feeding(path, pipe, failure, lambda: _read_behind(path, finished, step))


def _kill(procs):
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait()
        except OSError:
            pass


def _check(steps, procs, errs, failure, early_exit_ok):
    failed = []
    for step, proc, err in zip(steps, procs, errs):
        text = _stderr_text(err)
        if proc.returncode != 0:
            failed.append((step, proc.returncode, text))
    if early_exit_ok and procs[-1].returncode == 0:
        failed = [f for f in failed if not _is_pipe_victim(f[1], f[2])]
    if not failed:
        if failure:
            raise failure[0]
        return
    genuine = [f for f in failed if not _is_pipe_victim(f[1], f[2])]
    step, code, text = genuine[0] if genuine else failed[-1]
    if code < 0:
        detail = "was killed by signal %d" % -code
    else:
        detail = "exited with status %d" % code
    if text:
        detail += ": " + " ".join(text.split())
    raise PipelineError(step.name, detail)
