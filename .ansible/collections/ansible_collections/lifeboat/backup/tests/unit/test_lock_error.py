"""A lock wait that runs out is reported as one, naming the table; other errors pass through unchanged."""

import pytest

PG_DUMP = ("pg_dump exited with status 1: pg_dump: error: query failed: ERROR:  canceling statement due to statement "
           "timeout; pg_dump: detail: Query was: LOCK TABLE %s IN ACCESS SHARE MODE")


@pytest.mark.parametrize("text, table", [
    (PG_DUMP % "public.tickets", "public.tickets"),
    (PG_DUMP % 'public."orders archive"', 'public."orders archive"'),
    ('"public"."payload": query failed: canceling statement due to lock timeout', '"public"."payload"'),
    ("query failed: canceling statement due to lock timeout", "a table"),  # pg_table_size, before any count
])
def test_lock_timeouts_name_the_table(engine, text, table):
    error = engine.dump._lock_error(engine.errors.DatabaseError(text), 5)
    assert isinstance(error, engine.errors.DumpError)
    assert str(error) == "%s is locked by another session and was not released within lock_wait_timeout (5 s)" % table


@pytest.mark.parametrize("text", [
    "pg_dump exited with status 1: pg_dump: error: query failed: ERROR:  permission denied for table tickets; "
    "pg_dump: detail: Query was: LOCK TABLE public.tickets IN ACCESS SHARE MODE",
    "pg_dump exited with status 1: pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout; "
    "pg_dump: detail: Query was: COPY public.tickets (id) TO stdout;",
    '"public"."payload": query failed: canceling statement due to user request',
])
def test_other_errors_are_left_alone(engine, text):
    original = engine.errors.DatabaseError(text)
    assert engine.dump._lock_error(original, 5) is original
