"""The benchmark's machinery on a tiny database: every command runs and succeeds, the report is complete.

No timing assertions: on tiny data and a shared machine the ratios mean
nothing. `make bench` is the real run.
"""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from scripts import bench  # noqa: E402


def test_quick_benchmark_runs_every_command_and_writes_the_report(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "scripts", "bench.py"),
                           "--quick", "--out-dir", str(out)], capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(out.iterdir())
    assert len(files) == 1 and files[0].name.startswith("bench-") and files[0].suffix == ".json"
    report = json.loads(files[0].read_text())

    assert report["machine"]["cores"] >= 1 and report["settings"]["rounds"] == 1
    assert report["databases"]["bench"]["rows"]["payments"] > report["databases"]["bench_small"]["rows"]["payments"] > 0
    names = bench.DUMPS + bench.RESTORES + bench.CHECKS
    assert sorted(report["results"]) == sorted(names)
    for name in names:
        (run,) = report["runs"][name]
        assert run["seconds"] > 0 and run["round"] == 1, name
        stats = report["results"][name]
        assert 0 < stats["min_seconds"] <= stats["median_seconds"], name
    for name in ("pgdb_pgc", "pgdb_sqlgz", "lifeboat_module", "lifeboat_cli", "lifeboat_verify"):
        assert report["results"][name]["bytes"] > 0, name
    # the engine's own process was found and measured, through both front doors and at both sizes
    for name in ("lifeboat_cli", "lifeboat_module", "lifeboat_cli_small", "lifeboat_module_small",
                 "lifeboat_restore_cli", "lifeboat_restore_module", "lifeboat_verify"):
        assert 5 < report["results"][name]["engine_peak_mib"] < 1024, name
    assert report["runs"]["lifeboat_restore_cli"][0]["timings"]["restore_seconds"] >= 0

    # the shortest time the dump's CPU allows on these cores, beside the time it took
    for limit, ratio in (("lifeboat_cli_cpu_limit_vs_floor", "lifeboat_cli_vs_floor"),
                         ("lifeboat_socket_cpu_limit_vs_floor_socket", "lifeboat_socket_vs_floor_socket")):
        assert 0 < report["ratios"][limit]["median"] and report["ratios"][ratio]["median"] > 0, limit

    assert set(report["targets"]) == set(bench.TARGETS)
    for target in report["targets"].values():
        assert isinstance(target["met"], bool) and target["value"] is not None
    assert report["all_targets_met"] == (all(t["met"] for t in report["targets"].values())
                                         and all(r["met"] is not False for rows in report["sections"].values() for r in rows))
    assert "| lifeboat backup (CLI) |" in proc.stdout and str(files[0]) in proc.stdout
    # every section measured every row it names, each judged against its target where it has one
    assert sorted(report["sections"]) == sorted(bench.SECTIONS)
    for name, rows in report["sections"].items():
        assert rows and all(r["value"] is not None and r["met"] in (True, False, None) for r in rows), name
        assert "| %s | value |" % name in proc.stdout
