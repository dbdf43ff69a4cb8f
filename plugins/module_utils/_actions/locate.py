# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup a user named, and whether it lies here or in the bucket: decided once, for both front doors.

    source = Source(config, profile, backup_id, path, remote=..., host=..., tmp_dir=..., via=...)
    source.record                    # its manifest: enough for a plan or check mode
    source.verify(level, ...)        # verify it where it lies (a remote copy is pulled and checked first)
    with source.on_disk() as entry:  # its artifacts on disk (a remote one pulled into a private temporary dir)
        ...
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from .._store import catalog as _catalog
from . import pull as _pull
from . import verify as _verify


class Source:
    def __init__(self, config, profile=None, backup_id=None, path=None, remote=False, host=None, tmp_dir=None, via="module"):
        self.config = config
        self.profile = profile
        self.backup_id = backup_id
        self.path = path
        self.remote = bool(remote)
        self.host = host
        self.tmp_dir = tmp_dir
        self.via = via
        self._record = None

    @property
    def record(self):
        if self._record is None:
            if self.remote:
                self._record = _pull.remote_entry(self.config, self.profile, self.backup_id, self.host)
            else:
                self._record = _catalog.resolve(self.config["backup_root"], self.profile, self.backup_id, self.path)
        return self._record

    def _id(self):
        """The id a plan already showed, else what the user named (None: the newest)."""
        return self._record.id if self._record is not None else self.backup_id

    def verify(self, level, identity_file=None, scratch=None):
        if self.remote:  # a damaged remote copy is this verification's verdict, recorded as such
            return _pull.verify_remote(self.config, self.profile, self._id(), self.host, level, identity_file=identity_file,
                                       scratch=scratch, tmp_dir=self.tmp_dir, via=self.via)
        return _verify.verify(self.config, self.record, level, identity_file=identity_file, scratch=scratch, via=self.via)

    @contextlib.contextmanager
    def on_disk(self):
        if not self.remote:
            yield self.record
            return
        with _pull.pulled(self.config, self.profile, self.record.id, self.host, self.tmp_dir, via=self.via) as entry:
            yield entry
