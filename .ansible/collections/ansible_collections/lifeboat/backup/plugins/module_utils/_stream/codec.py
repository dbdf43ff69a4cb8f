# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compression and encryption stages: the same two tools on the way in and out.

Artifacts are plain ``zstd`` frames, optionally wrapped by ``age``, so an
operator can always restore with the stock tools alone::

    age -d -i key.txt app.dump.zst.age | zstd -d | pg_restore -d app
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile

from .._errors import ConfigError, LifeboatError
from .pipeline import Step


def tool(name):
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/local/bin:/usr/bin:/bin")
    if not path:
        raise ConfigError("%s is not installed (install the %s package)" % (name, name))
    return path


def suffix(encryption_mode):
    return ".zst.age" if encryption_mode == "age" else ".zst"


# Encoder settings measured on pg_dump archives; only the encoder changes, any zstd reads the result.
# pg_dump's uncompressed custom format frames every row with a 5-byte length;
# with matches of at least 6 bytes zstd stops spending them on those frames and
# the archive is 0.5-5 % smaller at every level tried (1, 3, 4, 5, 9, 15; level
# 2 uses 6 already), at no extra CPU.
# At level 3 (the default) a short-match table of 2^15 entries instead of 2^16
# costs 0.3 % in size and saves 10 % of zstd's CPU (1 GB bench database: 330.9
# vs 330.0 MB, 3.4 vs 3.8 s), which on a small host is dump time.
_TUNING = {3: "minMatch=6,chainLog=15"}
_DEFAULT_TUNING = "minMatch=6"


# zstd workers for compression_threads 0. One pg_dump stream brings 250-400 MB/s, which two or three workers keep
# up with at the default level; each worker holds buffers of its own whether it is busy or not (level 3: zstd used
# 49, 70, 102 and 164 MiB with 2, 4, 8 and 16 workers on an input it could keep up with), so zstd's own -T0, one
# per core, would take hundreds of MiB beside PostgreSQL on a large host and gain nothing.
AUTO_THREADS_MAX = 4


def zstd_threads(configured):
    """zstd's -T for ``compression_threads``: 0 means one per core this process may use, at most AUTO_THREADS_MAX."""
    if configured:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, AUTO_THREADS_MAX)


def encode_steps(encryption, level, threads):
    """zstd, then age when recipients are configured."""
    tuning = "--zstd=" + _TUNING.get(level, _DEFAULT_TUNING)
    steps = [Step("zstd", [tool("zstd"), "-q", "-c", "-%d" % level, tuning, "-T%d" % zstd_threads(threads)])]
    if encryption["mode"] == "age":
        argv = [tool("age"), "-e"]
        for recipient in encryption["recipients"] + [encryption.get("one_time_recipient")]:
            if recipient:
                argv += ["-r", recipient.strip()]
        steps.append(Step("age", argv))
    return steps


def check_identity(identity_file, artifact_name):
    if not identity_file:
        raise ConfigError("%s is encrypted: an age identity_file is needed to read it" % artifact_name)
    if not os.path.isfile(identity_file):
        raise ConfigError("age identity file %s does not exist" % identity_file)
    if not os.access(identity_file, os.R_OK):
        raise ConfigError("age identity file %s is not readable by this user" % identity_file)


def decode_steps(artifact, identity_file):
    """Steps that turn an artifact back into the plain pg_dump/pg_dumpall stream."""
    steps = []
    if artifact.get("encryption") == "age":
        check_identity(identity_file, artifact["name"])
        steps.append(Step("age", [tool("age"), "-d", "-i", identity_file]))
    steps.append(Step("zstd", [tool("zstd"), "-d", "-q", "-c"]))
    return steps


class OneTimeIdentity:
    """An age key pair that lives only for one run, to read a new backup back on a host
    that holds no private key. Its public half is added as an extra recipient; the
    identity is deleted on exit, after which that recipient stanza opens nothing.

    Yields ``(encryption settings with the extra recipient, identity file or None)``.
    """

    def __init__(self, encryption):
        self.encryption = encryption
        self.tmpdir = None

    def __enter__(self):
        if self.encryption["mode"] != "age":
            return self.encryption, None
        self.tmpdir = tempfile.mkdtemp(prefix="lifeboat-verify-")
        identity = os.path.join(self.tmpdir, "identity.txt")
        try:
            subprocess.run([tool("age-keygen"), "-o", identity], capture_output=True, check=True)
            public = subprocess.run([tool("age-keygen"), "-y", identity], capture_output=True, check=True, text=True).stdout.strip()
        except subprocess.CalledProcessError as exc:
            self.__exit__()
            raise LifeboatError("age-keygen failed: %s" % exc.stderr.strip())
        return dict(self.encryption, one_time_recipient=public), identity

    def __exit__(self, *exc):
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
