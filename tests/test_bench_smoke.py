"""The benchmark suite still runs: its in-process part, for a handful of requests on SQLite.

The real runs (``python -m bench``) are not part of the test suite; this keeps the code from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.data import stubref


def test_stubrefs_by_number_are_well_formed() -> None:
    from flask_stubber.models import normalize_stubref

    refs = [stubref(n) for n in (0, 1, 35, 36, 123_456_789, 36**8 - 1)]
    assert refs[:2] == ["2026-01-01-0000-0000", "2026-01-01-0000-0001"]
    assert refs[-1] == "2026-01-01-ZZZZ-ZZZZ"
    assert all(normalize_stubref(r) == r for r in refs)
    assert len(set(refs)) == len(refs)


def test_inprocess_part_writes_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--parts", "inprocess", "--databases", "sqlite", "--requests", "6", "--warmup", "2",
                 "--output", str(tmp_path), "--no-chart"])
    assert code == 0
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["machine"]["cpus"] >= 1
    by_target = results["inprocess"]["sqlite"]
    assert set(by_target) == {"floor", "baseline", "stubber"}
    for target, workloads in by_target.items():
        assert set(workloads) == {"transition", "update"}
        for figures in workloads.values():
            assert figures["requests"] == 6
            assert figures["errors"] == 0
            assert 0 < figures["p50_us"] <= figures["p99_us"]
            assert figures["mean_us"] > 0
            trips = figures["round_trips"]
            if target == "floor":
                assert trips["statements"] == 0
            else:
                assert trips["statements"] > 0 and trips["round_trips"] > trips["statements"]
    assert by_target["stubber"]["transition"]["round_trips"]["statements"] < (
        by_target["baseline"]["transition"]["round_trips"]["statements"])
    out = capsys.readouterr().out
    assert "flask-stubber" in out and "hand-written" in out and "bare floor" in out
