# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""manifest.json: the completion marker and the description of a backup.

A backup without a valid manifest does not exist. The manifest carries a
SHA-256 of its own canonical form, so a damaged manifest is detected instead
of being trusted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os

from .._errors import NotFoundError, VerifyError
from .files import atomic_write_json

MANIFEST = "manifest.json"
FORMAT = "lifeboat-backup"
FORMAT_VERSION = 1
SEAL = "manifest_sha256"
UTC = datetime.timezone.utc


def _canonical(document):
    body = {k: v for k, v in document.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def seal(document):
    sealed = dict(document)
    sealed[SEAL] = hashlib.sha256(_canonical(document)).hexdigest()
    return sealed


def write(backup_dir, document):
    """Seal and write the manifest atomically; call it last."""
    sealed = seal(dict(document, format=FORMAT, format_version=FORMAT_VERSION))
    atomic_write_json(os.path.join(backup_dir, MANIFEST), sealed)
    return sealed


def parse(raw, where):
    """Check a manifest's bytes and return the document; raise VerifyError when damaged."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise VerifyError("manifest of %s is damaged: not valid JSON (%s)" % (where, exc))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise VerifyError("manifest of %s is not a lifeboat manifest" % where)
    if document.get("format_version") != FORMAT_VERSION:
        raise VerifyError(
            "manifest of %s has format version %r; this lifeboat reads version %d"
            % (where, document.get("format_version"), FORMAT_VERSION)
        )
    expected = hashlib.sha256(_canonical(document)).hexdigest()
    if document.get(SEAL) != expected:
        raise VerifyError("manifest of %s is damaged: its checksum does not match its content" % where)
    return document


def read(backup_dir):
    path = os.path.join(backup_dir, MANIFEST)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise NotFoundError("%s has no manifest: it is not a complete backup" % backup_dir)
    except OSError as exc:
        raise VerifyError("cannot read %s: %s" % (path, exc.strerror or exc))
    return parse(raw, backup_dir)


def artifact(document, kind):
    for item in document["artifacts"]:
        if item["kind"] == kind:
            return item
    return None


def table_key(table):
    return "%s.%s" % (table["schema"], table["name"])


def iso(epoch):
    """Unix time -> '2026-11-22T02:00:00.123456Z'."""
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_of(text):
    """'2026-11-22T02:00:00.123456Z' -> Unix time."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def backup_time(document):
    """The moment a backup represents: its snapshot. Ordering uses this, never file names."""
    return epoch_of(document["consistent_at"])
