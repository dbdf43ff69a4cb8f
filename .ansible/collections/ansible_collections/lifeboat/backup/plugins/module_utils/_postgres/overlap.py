# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A parallel restore that loads the largest table while the artifact is still being decrypted.

``pg_restore --jobs`` needs a seekable file, so a parallel restore first
decrypts the artifact into one, and loading waits for all of it (about a
second per GB). When one table holds at least its share of the data
(1/jobs), its COPY and then its indexes are the restore's critical path,
and that COPY need not wait:

1. the table of contents is read from the head of the file as soon as it is
   written, and split along the archive's own dependencies;
2. pre-data (schemas, types, tables, functions) is restored, streamed from
   the file as it grows;
3. the largest table's rows are streamed into it the same way, on one
   connection, while the rest is decrypted;
4. once the file is complete, every entry that does not depend on that
   table's rows (other tables' rows, their indexes and constraints) is
   restored with the other jobs;
5. last, with all jobs, what depends on it: its indexes, constraints,
   triggers and policies, foreign keys to and from it, and what pg_restore
   always leaves to the end (materialized view data, event triggers, grants).

Every step is stock pg_restore with ``--use-list``. Only used when the
restore creates its database, so that any failure drops it whole.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
import time

from .._errors import RestoreError
from .._store import manifest as _manifest
from .._stream import artifacts as _artifacts
from .._stream import pipeline as _pipeline
from . import archive_toc as _offsets

# What pg_restore runs after everything else in one invocation; here that must be the last one.
_LAST = ("ACL", "DEFAULT ACL", "ACL LANGUAGE", "MATERIALIZED VIEW DATA", "EVENT TRIGGER")
_TOC_POLL = 0.01


def lead_table(manifest, jobs):
    """The table worth streaming first, or None when a plain parallel restore does as well.

    By size on disk at dump time (row counts for backups made before sizes
    were recorded). Below 1/jobs of the data, the other tables would wait
    longer for the jobs it holds than it saves.
    """
    tables = manifest["tables"]
    if jobs < 2 or not tables or any("oid" not in t for t in tables):
        return None
    key = "bytes" if all("bytes" in t for t in tables) else "rows"
    lead = max(tables, key=lambda t: t[key])
    total = sum(t[key] for t in tables)
    return lead if total and lead[key] * jobs >= total else None


class Split:
    """Dump ids in TOC order for each step: pre-data, the lead table's rows, the rest, and the last step."""

    def __init__(self, pre, lead, rest, last):
        self.pre, self.lead, self.rest, self.last = pre, lead, rest, last


def split(entries, table_oid):
    """Split the TOC around the rows of the table with ``table_oid``; None when this archive is not one to split."""
    data = [e for e in entries if e.desc == "TABLE DATA" and e.oid == table_oid]
    if len(data) != 1:
        return None
    data = data[0]
    waits = set(data.deps) | {data.dump_id}  # the table itself, then its rows
    if any(e.desc == "TABLE ATTACH" and waits & set(e.deps) for e in entries):
        return None  # a partition: what is built on its parent reaches it too
    sections = _effective_sections(entries)
    pre = [e.dump_id for e in entries if sections[e.dump_id] == _offsets.SECTION_PRE_DATA and e.desc not in _LAST]
    first = set(pre)
    after = [e for e in entries if e.dump_id not in first and e is not data]
    changed = True
    while changed:  # dependencies normally come first in TOC order; loop anyway until nothing moves
        changed = False
        for entry in after:
            if entry.dump_id not in waits and (entry.desc in _LAST or waits & set(entry.deps)):
                waits.add(entry.dump_id)
                changed = True
    return Split(pre, [data.dump_id], [e.dump_id for e in after if e.dump_id not in waits],
                 [e.dump_id for e in after if e.dump_id in waits])


def _effective_sections(entries):
    """Comments, grants and labels have no section; pg_restore counts them in the one of the entry before them."""
    sections = {}
    current = _offsets.SECTION_PRE_DATA
    for entry in entries:
        if entry.section != _offsets.SECTION_NONE:
            current = entry.section
        sections[entry.dump_id] = current
    return sections


class _Background(threading.Thread):
    """Runs ``action`` and keeps its outcome for ``result``; sets ``done`` when it ends, and ``failed`` if it raised."""

    def __init__(self, action, done=None):
        super(_Background, self).__init__(name="lifeboat-restore")
        self.action, self.done, self.failed = action, done or threading.Event(), threading.Event()
        self.value = self.error = None
        self.seconds = None
        self.start()

    def run(self):
        started = time.time()
        try:
            self.value = self.action()
        except BaseException as exc:  # handed to the caller by result()
            self.error = exc
            self.failed.set()
        finally:
            self.seconds = round(time.time() - started, 3)
            self.done.set()

    def result(self):
        self.join()
        if self.error:
            raise self.error
        return self.value


def restore(entry, item, options, argv, env, workdir, table, abort):
    """Restore the database artifact, loading ``table`` while it decrypts; returns timings.

    ``argv``: pg_restore and its connection options. ``abort``: drops the
    target database, which also ends a load still running after a failure.
    An archive that cannot be split is restored whole with ``--jobs`` once
    decrypted, as without this module.
    """
    started = time.time()
    archive = os.path.join(workdir, "archive")
    decrypted, stop = threading.Event(), threading.Event()
    decrypt = _Background(lambda: _artifacts.decrypt_archive(entry, item, options.identity_file, workdir, stop=stop),
                          decrypted)
    loader = None
    name = _manifest.table_key(table)
    try:
        parts = _split_when_readable(archive, decrypted, table["oid"])
        if parts:
            _run(argv, env, workdir, "pre", "pre-data", parts.pre, source=archive, follow=decrypted)
            loader = _Background(lambda: _run(argv, env, workdir, "lead", "the rows of %s" % name, parts.lead,
                                              source=archive, follow=decrypted))
            while not decrypted.wait(0.05):
                if loader.failed.is_set():
                    loader.result()  # its failure is the restore's: no need to decrypt the rest first
        decrypt.result()
        jobs = ["--jobs=%d" % options.jobs]
        if not parts:
            _run(argv + jobs + [archive], env, workdir, "all", "the archive", None)
        else:
            _run(argv + ["--jobs=%d" % max(1, options.jobs - 1), archive], env, workdir, "rest", "the other tables",
                 parts.rest, stop=loader.failed)
            loader.result()
            _run(argv + jobs + [archive], env, workdir, "last", "what depends on %s" % name, parts.last)
    except BaseException:
        # Which background step failed on its own, before anything below stopped it: that failure is the cause.
        undecryptable = decrypted.is_set() and decrypt.error
        load_failed = loader is not None and loader.failed.is_set()
        stop.set()
        if loader and loader.is_alive():
            abort()  # its connection goes with the database, so the load ends now, not when its COPY would
        for background in (decrypt, loader):
            if background:
                background.join()
        if undecryptable:
            raise decrypt.error  # a damaged artifact or a wrong key explains whatever failed after it
        if load_failed:
            raise loader.error  # what stopped the other steps
        raise
    return {"decrypt_seconds": decrypt.seconds, "streamed_table": name,
            "restore_seconds": round(time.time() - started, 3)}


def _split_when_readable(archive, decrypted, table_oid):
    """Wait for the whole table of contents to be in the file (it comes first), then split it."""
    while True:
        finished = decrypted.is_set()
        entries = _offsets.read_toc(archive) if os.path.exists(archive) else None
        if entries is not None:
            return split(entries, table_oid)
        if finished:
            return None
        decrypted.wait(_TOC_POLL)


def _run(argv, env, workdir, name, what, ids, source=None, follow=None, stop=None):
    """One pg_restore over the entries ``ids`` (all of them when None).

    ``source`` and ``follow``: fed from the file as it grows. ``stop``: an
    Event that ends it early (another step failed).
    """
    if ids is not None:
        if not ids:
            return
        path = os.path.join(workdir, "%s.list" % name)
        with open(path, "w") as handle:
            handle.write("".join("%d;\n" % dump_id for dump_id in ids))
        argv = argv + ["--use-list=%s" % path]
    step = _pipeline.Step("pg_restore", argv, env, stdio="i" if source else "")
    try:
        _pipeline.run([step], source=source, follow=follow, early_exit_ok=bool(source), stop=stop)
    except _pipeline.PipelineError as exc:
        raise RestoreError("restoring %s: %s" % (what, exc))
