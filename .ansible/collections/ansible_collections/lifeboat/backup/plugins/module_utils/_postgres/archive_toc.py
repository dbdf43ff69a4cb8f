# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data offsets for a custom-format archive that pg_dump wrote into a pipe.

pg_dump records where each table's data starts only when it can seek back
into its output file. Ours goes into zstd, so the table of contents says
"position not set" for every table. ``pg_restore --jobs`` then cannot size
the tables to start the largest first, and each worker scans the archive
for its blocks. Once the archive is decrypted into a file, this module
writes the positions into the TOC, making it byte-for-byte the archive pg_dump
would have written to a file (the creation time aside).

Finding the block starts is one ``find`` over the data, done while the file
is being decrypted (``BlockFinder``): in an uncompressed archive, COPY rows
(text, which never holds a NUL byte) are framed by 5-byte lengths that are
never all zero, so five NUL bytes followed by "data block" occur only where
one block ends and the next begins. Each table's block is then the first one
after the previous table's carrying its entry id, and pg_restore checks that
id again at every position it seeks to. Anything unexpected (another archive
version, compressed blocks, large objects before a table) leaves the
remaining entries as they were, which pg_restore handles, only slower.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import mmap

_MAGIC = b"PGDMP"
_CUSTOM_FORMAT = 1
_KNOWN_VERSIONS = ((1, 12, 0), (1, 16, 0))  # pg_dump 9.5 to 17
_POS_NOT_SET, _POS_SET = 1, 2
_BLOCK_DATA = 1
_INT_SIZE = 4  # sizeof(int) wherever pg_dump runs; the block pattern below assumes it
# A zero-length chunk (sign byte and four zero bytes) ends a block; then "data block" and the sign of its id.
_BLOCK_BOUNDARY = b"\x00" * (1 + _INT_SIZE) + bytes([_BLOCK_DATA, 0])


class _Unknown(Exception):
    """The archive is not one this module can index; it is left as it is."""


class _Reader:
    """pg_dump's archive encoding: an int is a sign byte and four little-endian bytes;
    a string is its length (an int, -1 for NULL) and its bytes."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, count):
        if count < 0 or self.pos + count > len(self.data):
            raise _Unknown("the table of contents runs past the end of the archive")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def byte(self):
        return self.take(1)[0]

    def int(self):
        sign = self.byte()
        value = int.from_bytes(self.take(_INT_SIZE), "little")
        return -value if sign else value

    def string(self):
        length = self.int()
        return None if length < 0 else self.take(length)


class BlockFinder:
    """Positions where a data block may start; ``feed`` it the whole archive, in order, in chunks of any size."""

    def __init__(self):
        self.starts = []
        self.size = 0
        self._tail = b""

    def feed(self, chunk):
        if self._tail:  # a boundary split between the previous chunk and this one
            self._collect(self._tail + bytes(chunk[:len(_BLOCK_BOUNDARY) - 1]), self.size - len(self._tail))
        self._collect(chunk, self.size)
        keep = len(_BLOCK_BOUNDARY) - 1
        self._tail = (self._tail + bytes(chunk[-keep:]))[-keep:]
        self.size += len(chunk)

    def _collect(self, data, base):
        found = data.find(_BLOCK_BOUNDARY)
        while found >= 0:
            self.starts.append(base + found + 1 + _INT_SIZE)
            found = data.find(_BLOCK_BOUNDARY, found + 1)


def encode_int(value):
    return (b"\x01" if value < 0 else b"\x00") + abs(value).to_bytes(_INT_SIZE, "little")


def _read_head(reader):
    if reader.take(5) != _MAGIC:
        raise _Unknown("not a pg_dump custom-format archive")
    version = (reader.byte(), reader.byte(), reader.byte())
    if not _KNOWN_VERSIONS[0] <= version <= _KNOWN_VERSIONS[1]:
        raise _Unknown("archive version %d.%d.%d" % version)
    int_size = reader.byte()
    offset_size = reader.byte()
    if reader.byte() != _CUSTOM_FORMAT or int_size != _INT_SIZE or not 1 <= offset_size <= 8:
        raise _Unknown("not a custom-format archive with 4-byte integers")
    compressed = reader.byte() if version >= (1, 15, 0) else reader.int()
    if compressed:
        raise _Unknown("the archive's blocks are compressed")
    for _field in range(7):  # creation time: sec, min, hour, day, month, year, isdst
        reader.int()
    for _field in range(3):  # database name, server version, pg_dump version
        reader.string()
    return version, offset_size


class TocEntry:
    """One entry of the archive's table of contents, as far as restores need it."""

    def __init__(self, dump_id, oid, desc, section, deps, flag, flag_at):
        self.dump_id = dump_id
        self.oid = oid  # the object's catalog oid (the table's, for TABLE and TABLE DATA)
        self.desc = desc
        self.section = section  # SECTION_* below
        self.deps = deps  # dump ids this entry depends on
        self.flag = flag  # data offset flag: _POS_NOT_SET, _POS_SET or "no data"
        self.flag_at = flag_at


SECTION_NONE, SECTION_PRE_DATA, SECTION_DATA, SECTION_POST_DATA = 1, 2, 3, 4


def _read_toc(reader, version, offset_size):
    """TocEntry list in TOC order, which is the order of the data blocks."""
    entries = []
    for _entry in range(reader.int()):
        dump_id = reader.int()
        reader.int()  # had a data dumper
        reader.string()  # table oid
        oid = reader.string()
        reader.string()  # tag
        desc = (reader.string() or b"").decode("utf-8", "replace")
        section = reader.int()
        for _field in range(5):  # definition, drop statement, COPY statement, schema, tablespace
            reader.string()
        if version >= (1, 14, 0):
            reader.string()  # table access method
        if version >= (1, 16, 0):
            reader.int()  # relkind
        reader.string()  # owner
        reader.string()  # "with oids"
        deps = []
        dep = reader.string()
        while dep is not None:  # dependencies, ended by NULL
            deps.append(int(dep))
            dep = reader.string()
        flag_at = reader.pos
        flag = reader.byte()
        reader.take(offset_size)
        entries.append(TocEntry(dump_id, int(oid or 0), desc, section, deps, flag, flag_at))
    return entries


def _parse(data):
    """(TocEntry list, where the TOC ends, the size of an offset), or None for an archive this module does not know
    or whose TOC is not all there."""
    reader = _Reader(data)
    try:
        version, offset_size = _read_head(reader)
        entries = _read_toc(reader, version, offset_size)
    except (_Unknown, ValueError):
        return None
    return entries, reader.pos, offset_size


def read_toc(path):
    """The TocEntry list of the archive at ``path``, or None when it is not an archive this module knows."""
    with open(path, "rb") as handle:
        if not handle.seek(0, 2):
            return None
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            parsed = _parse(data)
        finally:
            data.close()
    return parsed[0] if parsed else None


def fill(path, finder=None):
    """Write the position of every table's data block into the TOC of the archive at ``path``, in place.

    ``finder``: a BlockFinder already fed this whole file while it was written;
    without one the file is searched now. Returns how many positions were
    written (0 when the archive already has them or is not one this module knows).
    """
    with open(path, "r+b") as handle:
        size = handle.seek(0, 2)
        if not size:
            return 0
        data = mmap.mmap(handle.fileno(), 0)
        try:
            if finder is None or finder.size != size:
                finder = BlockFinder()
                finder.feed(data)
            return _fill(data, finder.starts)
        finally:
            data.close()


def _fill(data, starts):
    parsed = _parse(data)
    if not parsed:
        return 0
    entries, pos, offset_size = parsed  # the first block follows the TOC
    candidate = bisect.bisect_left(starts, pos)
    filled = 0
    for entry in entries:
        dump_id, flag_at = entry.dump_id, entry.flag_at
        if entry.flag != _POS_NOT_SET:
            continue
        if entry.desc != "TABLE DATA":
            break  # large-object blocks hold arbitrary bytes: past one, a match proves nothing
        header = bytes([_BLOCK_DATA]) + encode_int(dump_id)
        if data[pos:pos + len(header)] == header:
            start = pos
        else:
            while candidate < len(starts) and (starts[candidate] < pos or data[starts[candidate]:starts[candidate] + len(header)] != header):
                candidate += 1
            if candidate == len(starts):
                break
            start = starts[candidate]
        data[flag_at:flag_at + 1 + offset_size] = bytes([_POS_SET]) + start.to_bytes(offset_size, "little")
        filled += 1
        pos = start + len(header)
    return filled
