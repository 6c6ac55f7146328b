"""``benchmarks/bench_sequence.py``: the running totals it reports and the unreviewed photos it hands a fine-tune."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from model_core.data import Sample


def _bench():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sequence.py"
    spec = importlib.util.spec_from_file_location("bench_sequence", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sequence"] = module
    spec.loader.exec_module(module)
    return module


def test_the_cumulative_times_are_the_running_sums_per_tool_set():
    bs = _bench()
    rows = [
        {"brush": 10.0, "vessel_tools": 9.0, "proofread": 12.0, "proofread_where_it_pays": 9.0},
        {"brush": 5.5, "vessel_tools": 6.0, "proofread": 4.0, "proofread_where_it_pays": 4.0},
        {"brush": 1.0, "vessel_tools": 1.5, "proofread": 2.0, "proofread_where_it_pays": 1.5},
    ]
    out = bs.with_totals(rows)
    assert out["cumulative"]["brush"] == [10.0, 15.5, 16.5]
    assert out["cumulative"]["proofread_where_it_pays"] == [9.0, 13.0, 14.5]
    assert out["total"] == pytest.approx(
        {"brush": 16.5, "vessel_tools": 16.5, "proofread": 18.0, "proofread_where_it_pays": 14.5}
    )
    assert out["per_photo"] is rows


def test_the_unreviewed_photos_are_spread_over_those_not_reached_and_at_most_eight():
    bs = _bench()
    later = [Sample(Path(f"p{i:02d}.png"), Path(f"m{i:02d}.png")) for i in range(20)]
    picked = bs.spread(later)
    assert picked == [Path(f"p{i:02d}.png") for i in range(0, 20, 3)][:8]
    assert bs.spread(later[:3]) == [Path("p00.png"), Path("p01.png"), Path("p02.png")]
