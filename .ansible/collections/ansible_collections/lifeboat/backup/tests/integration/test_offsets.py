"""_offsets.fill on real pg_dump archives: a piped archive becomes the archive pg_dump writes to a file.

Rows are sized so that their 5-byte length frames hold as many zero bytes as
they can (lengths 256, 65536, 1 and empty tables), the worst case for finding
block boundaries by their run of five zeros.
"""

import os
import subprocess
import uuid

import pytest


def dump(pg, db, path, *options, piped=True):
    """pg_dump -Fc into ``path``, through a pipe (as the engine does) or as a file (pg_dump can seek)."""
    env = dict(os.environ, PGPASSWORD=pg.password)
    argv = [os.path.join(pg.info["bin_dir"], "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", db]
    argv += list(options)
    if piped:
        with open(path, "wb") as out:
            producer = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
            subprocess.run(["cat"], stdin=producer.stdout, stdout=out, check=True)
            producer.stdout.close()
            assert producer.wait() == 0
    else:
        subprocess.run(argv + ["-f", path], env=env, check=True)
    return path


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def framed_db(pg):
    """Tables whose COPY lines are 1, 256 and 65536 bytes long, one empty table, one with no columns."""
    db = "offsets_%s" % uuid.uuid4().hex[:8]
    pg.psql('CREATE DATABASE "%s"' % db)
    pg.psql(
        "CREATE TABLE empty_first (a int);"
        "CREATE TABLE lines (k int, body text);"
        # 'k<TAB>body<NEWLINE>' with a one-digit k: the line is len(body) + 3 bytes
        "INSERT INTO lines SELECT g % 10, repeat('x', n - 3) FROM generate_series(1, 300) g, unnest(ARRAY[256, 65536, 255, 257, 512]) n;"
        "CREATE TABLE no_columns ();"
        "INSERT INTO no_columns SELECT FROM generate_series(1, 500);"
        "CREATE TABLE empty_last (a int);"
        "CREATE TABLE nulls (k int, v text);"
        "INSERT INTO nulls SELECT NULL, NULL FROM generate_series(1, 1000);"
        "CREATE INDEX ON lines (k);",
        db=db,
    )
    yield db
    pg.psql('DROP DATABASE "%s" WITH (FORCE)' % db)


def test_piped_archive_gets_the_offsets_a_file_archive_has(engine, pg, framed_db, tmp_path):
    piped = dump(pg, framed_db, str(tmp_path / "piped"), "-Z0")
    written = dump(pg, framed_db, str(tmp_path / "file"), "-Z0", piped=False)
    before = read(piped)
    assert engine.offsets.fill(piped) == 5  # one per table
    after, expected = read(piped), read(written)
    assert after != before and len(after) == len(expected)
    header = engine.offsets._Reader(expected)
    engine.offsets._read_head(header)
    differing = [i for i in range(len(expected)) if after[i] != expected[i]]
    assert all(i < header.pos for i in differing)  # at most the creation time in the header differs
    assert engine.offsets.fill(piped) == 0  # already indexed: nothing to do


def test_archive_with_large_objects_restores_in_parallel(engine, pg, framed_db, tmp_path):
    pg.psql("SELECT lo_from_bytea(0, decode(repeat('0000000000010000000000', 400), 'hex'))", db=framed_db)
    piped = dump(pg, framed_db, str(tmp_path / "piped"), "-Z0")
    assert engine.offsets.fill(piped) == 5  # the tables; the large-object block is left for pg_restore to find
    target = framed_db + "_restored"
    pg.psql('CREATE DATABASE "%s"' % target)
    try:
        env = dict(os.environ, PGPASSWORD=pg.password)
        subprocess.run([os.path.join(pg.info["bin_dir"], "pg_restore"), "--jobs=2", "--exit-on-error", "-h", "127.0.0.1",
                        "-p", str(pg.port), "-U", "postgres", "-d", target, piped], env=env, check=True, capture_output=True)
        for sql in ("SELECT count(*), sum(length(body)) FROM lines", "SELECT count(*) FROM no_columns",
                    "SELECT count(*) FROM nulls WHERE k IS NULL", "SELECT string_agg(md5(lo_get(oid)), ',') FROM pg_largeobject_metadata"):
            assert pg.psql(sql, db=target) == pg.psql(sql, db=framed_db), sql
    finally:
        pg.psql('DROP DATABASE "%s" WITH (FORCE)' % target)


@pytest.mark.parametrize("case", ["compressed", "file", "truncated", "empty", "not an archive"])
def test_archives_it_cannot_index_are_left_untouched(engine, pg, framed_db, tmp_path, case):
    path = str(tmp_path / "archive")
    if case == "compressed":
        dump(pg, framed_db, path, "-Z1")
    elif case == "file":
        dump(pg, framed_db, path, "-Z0", piped=False)
    elif case == "truncated":
        dump(pg, framed_db, path, "-Z0")
        with open(path, "r+b") as handle:
            handle.truncate(300)  # inside the table of contents
    else:
        with open(path, "wb") as handle:
            handle.write(b"" if case == "empty" else b"PGDMP but nothing else " * 10)
    before = read(path)
    assert engine.offsets.fill(path) == 0
    assert read(path) == before


def test_block_finder_sees_the_same_starts_whatever_the_chunks(engine, pg, framed_db, tmp_path):
    """Decryption hands the finder chunks of any size; a boundary split between two chunks still counts once."""
    piped = dump(pg, framed_db, str(tmp_path / "piped"), "-Z0")
    data = read(piped)
    whole = engine.offsets.BlockFinder()
    whole.feed(data)
    assert len(whole.starts) >= 5
    for size in (3, 4093, 1 << 20):
        chunked = engine.offsets.BlockFinder()
        for at in range(0, len(data), size):
            chunked.feed(data[at:at + size])
        assert (chunked.starts, chunked.size) == (whole.starts, len(data)), size
    copy = str(tmp_path / "copy")
    with open(copy, "wb") as handle:
        handle.write(data)
    assert engine.offsets.fill(piped, whole) == engine.offsets.fill(copy) == 5
    assert read(piped) == read(copy)
