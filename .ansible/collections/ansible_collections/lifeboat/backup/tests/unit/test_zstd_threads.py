"""compression_threads 0 gives zstd one worker per usable core, at most four; a number set is passed as it is."""

import os

import pytest


@pytest.mark.parametrize("cores, workers", [(1, 1), (2, 2), (4, 4), (64, 4)])
def test_zero_means_one_worker_per_usable_core_at_most_four(engine, monkeypatch, cores, workers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert engine.codec.zstd_threads(0) == workers
    zstd = engine.codec.encode_steps({"mode": "none"}, 3, 0)[0]
    assert "-T%d" % workers in zstd.argv and "-T0" not in zstd.argv


def test_cores_outside_the_affinity_mask_do_not_count(engine, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert engine.codec.zstd_threads(0) == 1


def test_a_configured_count_is_kept_beyond_the_automatic_cap(engine, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert engine.codec.zstd_threads(12) == 12
    assert "-T12" in engine.codec.encode_steps({"mode": "none"}, 9, 12)[0].argv
