"""Running one benchmarked command: wall time, CPU of its process tree, and the engine's own peak memory.

The engine's peak resident memory is the ``VmHWM`` (high-water mark of RSS)
of the one Python process that runs the engine: the ``lifeboat`` CLI process
itself, or the module process Ansible starts (``AnsiballZ_<module>.py``).
Its children (pg_dump, zstd, age, pg_restore) are separate processes with
their own memory and are not counted in it. ``VmHWM`` only grows, so the
last sample before the process exits is its peak. The same samples give the
engine process's own CPU time (user + system, without its children).
"""

import os
import subprocess
import tempfile
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


class Outcome:
    def __init__(self, argv, rc, seconds, cpu_seconds, stdout, stderr, engine_peak_kib, engine_cpu_seconds):
        self.argv = argv
        self.rc = rc
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds  # user + system of the whole process tree (children that were waited for)
        self.stdout = stdout
        self.stderr = stderr
        self.engine_peak_kib = engine_peak_kib
        self.engine_cpu_seconds = engine_cpu_seconds

    def check(self, what):
        if self.rc != 0:
            raise RuntimeError("%s failed (exit %d): %s %s" % (what, self.rc, self.stderr.strip()[-2000:], self.stdout.strip()[-2000:]))
        return self


def _status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid, "rb") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat_fields(pid):
    """Fields of /proc/<pid>/stat after the command name (None when the process is gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def _own_cpu_seconds(pid):
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / float(TICK)


def tree_cpu_seconds(root):
    """CPU time of ``root`` and its live children, plus what its reaped children used (a server's backends)."""
    fields = _stat_fields(root)
    if fields is None:
        return None
    total = sum(int(f) for f in fields[11:15]) / float(TICK)
    for pid in _children_map().get(root, []):
        total += _own_cpu_seconds(pid) or 0
    return total


def _children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def _find_descendant(root, pattern):
    children = _children_map()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                args = handle.read().split(b"\0")
            # the interpreter running the file, not the ``sh -c "python .../AnsiballZ_x.py"`` around it
            if any(a.endswith(b"/" + pattern.encode()) for a in args[1:]):
                return pid
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return None


class _Sampler(threading.Thread):
    """Follows VmHWM of the engine process: the started process itself, or a descendant matching ``pattern``."""

    def __init__(self, root, pattern):
        super(_Sampler, self).__init__(daemon=True)
        self.root, self.pattern = root, pattern
        self.pid = root if pattern is None else None
        self.peak = self.cpu = None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            if self.pid is None:
                self.pid = _find_descendant(self.root, self.pattern)
            if self.pid is not None:
                value = _status_kib(self.pid, b"VmHWM:")
                cpu = _own_cpu_seconds(self.pid)
                if value is not None and cpu is not None:  # both read before the process went away
                    self.peak = max(self.peak or 0, value)
                    self.cpu = max(self.cpu or 0, cpu)
            self.done.wait(0.02 if self.pid else 0.05)


def run(argv, env=None, engine=None, timeout=7200, discard_stdout=False):
    """Run ``argv`` to completion. ``engine``: None (no memory sampling), "self", or a cmdline substring.

    ``discard_stdout``: the command's stdout is /dev/null (``cmd > /dev/null``).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if discard_stdout else out, stderr=err, env=env)
        sampler = None
        if engine:
            sampler = _Sampler(proc.pid, None if engine == "self" else engine)
            sampler.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            status, usage = os.wait4(proc.pid, 0)[1:]
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if sampler:
            sampler.done.set()
            sampler.join()
        out.seek(0)
        err.seek(0)
        return Outcome(argv, proc.returncode, seconds, usage.ru_utime + usage.ru_stime,
                       out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                       sampler.peak if sampler else None, sampler.cpu if sampler else None)
