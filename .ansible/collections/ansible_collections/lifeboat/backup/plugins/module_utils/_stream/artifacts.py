# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading artifacts back: size and SHA-256 against the manifest, and decoding.

Shared by verify and restore. Every reader hashes what it reads, so a
decode that happens to succeed on a modified file still fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

from .._errors import VerifyError
from .._postgres import archive_toc as _offsets
from . import codec as _codec
from . import pipeline as _pipeline


def checksum(entry, item):
    """Size and SHA-256 of one artifact against the manifest; raises VerifyError naming it."""
    path = os.path.join(entry.path, item["name"])
    _check_size(path, item)
    try:
        digest = _hash_file(path)
    except OSError as exc:
        raise VerifyError("artifact %s cannot be read: %s" % (item["name"], exc.strerror or exc))
    _check_digest(item, digest)


def _check_size(path, item):
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise VerifyError("artifact %s is missing from %s" % (item["name"], os.path.dirname(path)))
    if size != item["bytes"]:
        raise VerifyError(
            "artifact %s is %d bytes but the manifest records %d (%s)"
            % (item["name"], size, item["bytes"], "truncated" if size < item["bytes"] else "grown")
        )


def _check_digest(item, result):
    if result.bytes != item["bytes"] or result.sha256 != item["sha256"]:
        raise VerifyError("artifact %s does not match its SHA-256 in the manifest (corrupted)" % item["name"])


def _hash_file(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(_pipeline.CHUNK)
        while True:
            n = handle.readinto(buf)
            if not n:
                break
            digest.update(memoryview(buf)[:n])
            size += n
    return _pipeline.Result(size, digest.hexdigest())


def read_through(entry, item, identity_file, consumer):
    """Decode an artifact into ``consumer`` steps, hashing it on the way; VerifyError names what failed.

    When decoding fails, the checksum tells a damaged file from a wrong key.
    """
    path = os.path.join(entry.path, item["name"])
    _check_size(path, item)
    steps = _codec.decode_steps(item, identity_file) + consumer
    try:
        source = _pipeline.run(steps, source=path)["source"]
    except _pipeline.PipelineError as exc:
        checksum(entry, item)  # raises first if the file itself is damaged
        if exc.step in [step.name for step in consumer]:
            raise VerifyError("artifact %s: %s" % (item["name"], exc))  # read back fine; its consumer refused it
        raise VerifyError("artifact %s cannot be read back: %s" % (item["name"], exc))
    _check_digest(item, source)


def decrypt_to_file(entry, item, identity_file, directory, watch=None, stop=None):
    """Decode an artifact into a private file in ``directory``; the caller removes it.

    ``watch``: a function given the decoded bytes, in order, while they are written.
    ``stop``: an Event that ends the decoding early (raising _pipeline.Stopped).
    """
    path = os.path.join(entry.path, item["name"])
    _check_size(path, item)
    target = os.path.join(directory, "archive")
    try:
        result = _pipeline.run(_codec.decode_steps(item, identity_file), source=path, sink=target, scratch_sink=True,
                               watch_sink=watch, stop=stop)
    except _pipeline.Stopped:
        raise
    except _pipeline.PipelineError as exc:
        checksum(entry, item)
        raise VerifyError("artifact %s cannot be decrypted into %s: %s" % (item["name"], directory, exc))
    _check_digest(item, result["source"])
    return target


def decrypt_archive(entry, item, identity_file, directory, stop=None):
    """decrypt_to_file for a pg_dump archive, with the data offsets pg_dump could not write into a pipe filled in
    (``_offsets``), so ``pg_restore --jobs`` seeks to each table and starts with the largest."""
    blocks = _offsets.BlockFinder()
    archive = decrypt_to_file(entry, item, identity_file, directory, watch=blocks.feed, stop=stop)
    _offsets.fill(archive, blocks)
    return archive


def listing(entry, item, identity_file, pg_restore, workdir, env, archive=None):
    """The archive's table of contents (``pg_restore --list``) as text.

    From a decrypted ``archive`` when there is one; otherwise streamed, and
    pg_restore stops reading once it has the TOC at the head of the archive.
    """
    out = os.path.join(workdir, "toc.list")
    argv = [pg_restore, "--list", "--file=%s" % out]
    try:
        if archive:
            _pipeline.run([_pipeline.Step("pg_restore", argv + [archive], env)])
        else:
            _check_size(os.path.join(entry.path, item["name"]), item)
            steps = _codec.decode_steps(item, identity_file) + [_pipeline.Step("pg_restore", argv, env)]
            _pipeline.run(steps, source=os.path.join(entry.path, item["name"]), early_exit_ok=True)
    except _pipeline.PipelineError as exc:
        raise VerifyError("cannot read the table of contents of %s: %s" % (item["name"], exc))
    with open(out, "r", encoding="utf-8") as handle:
        return handle.read()
