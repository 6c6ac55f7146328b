"""The simulated grader of ``benchmarks/bench_correction.py``: what a trace anchor click and a tool switch cost."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from retina_desktop.core.vessels.tracing import TraceCost


def _bench():
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_correction.py"
    spec = importlib.util.spec_from_file_location("bench_correction", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_correction"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def horizontal(row: int, n: int = 60) -> np.ndarray:
    return np.stack([np.full(n - 10, row), np.arange(5, n - 5)], axis=1)


def test_an_anchor_target_is_the_band_of_clicks_that_snap_onto_the_vessel():
    bc = _bench()
    prob = np.zeros((40, 60), np.float32)
    prob[20, :] = 0.9
    tracing = bc.Tracing(TraceCost.from_prediction(prob), floor=0.5)
    ref = horizontal(20)
    (x, y), width = tracing.anchor_at(ref, 25, 0.5, 1.0)
    assert (x, y) == (30.5, 20.5)
    assert width == 7.0  # every click up to 3 px either side lands on it
    # A strong vessel 4 px below: clicks 2 px or more towards it land on it, so the band is 3 + 1 + 1 px.
    prob[24, :] = 0.95
    tracing = bc.Tracing(TraceCost.from_prediction(prob), floor=0.5)
    _, width = tracing.anchor_at(ref, 25, 0.5, 1.0)
    assert width == 5.0


def test_an_anchor_that_even_an_exact_click_misses_is_clicked_exactly_at_the_vessel_width():
    bc = _bench()
    prob = np.zeros((40, 60), np.float32)
    prob[21, :] = 0.9  # the model's ridge 1 px from the reference centre line
    tracing = bc.Tracing(TraceCost.from_prediction(prob), floor=0.5)
    (x, y), width = tracing.anchor_at(horizontal(20), 25, 0.5, 1.0)
    assert (x, y) == (30.5, 20.5) and width == 1.0
    # Read on the pixel grid (1 px tolerance), the snapped click fits.
    tracing = bc.Tracing(TraceCost.from_prediction(prob), floor=1.0)
    (x, y), width = tracing.anchor_at(horizontal(20), 25, 1.0, 1.0)
    assert (x, y) == (30.5, 21.5) and width > 1.0


def test_setting_up_a_fix_costs_a_key_only_when_the_tool_changes():
    bc = _bench()
    g = bc.Grader(np.zeros(2), tool="trace", brush_radius=0.5)
    assert bc.setup_cost(g, "trace") == (0.0, 0)
    seconds, keys = bc.setup_cost(g, "brush", 0.5)
    assert keys == 1 and seconds == pytest.approx(bc.KEY)
    # Stepping the brush from 0.5 px to 1.125 px of radius: one ']' (r -> 1.25 r + 0.5).
    seconds, keys = bc.setup_cost(g, "brush", 1.125)
    assert keys == 2 and seconds == pytest.approx(2 * bc.KEY)
    assert g.keys == 0 and g.tool == "trace"  # the grader itself is untouched


def test_the_signal_bound_lets_proposals_take_only_the_pieces_the_candidates_signal_reaches():
    bc = _bench()
    signal = np.zeros((40, 60), bool)
    signal[11, 5:55] = True  # 1 px beside the first missed piece: within the 1-px rule
    faint = bc.Piece("missed", horizontal(10), 50.0, 1.0)
    unseen = bc.Piece("missed", horizontal(30), 50.0, 1.0)  # no signal anywhere near it
    spurious = bc.Piece("spurious", horizontal(20), 50.0, 2.0)  # in the mask: always proposable
    out = bc.signal_bound([faint, unseen, spurious], [10.0, 5.0, 3.0], signal)
    proposal = 2 * 0.28 + 1.35
    assert (out["missed"], out["missed_with_signal"], out["spurious"]) == (2, 1, 1)
    assert out["brush_seconds"] == pytest.approx(18.0)
    assert out["best_seconds"] == pytest.approx(18.0 - (10.0 - proposal) - (3.0 - proposal))
    signal[11, 5:20] = False  # now only 70 % of the first piece is reached: under the 80 % rule
    assert bc.signal_bound([faint], [10.0], signal)["missed_with_signal"] == 0


def test_a_bridge_fixes_a_true_break_when_the_corrected_centre_line_meets_the_run():
    from types import SimpleNamespace

    bc = _bench()
    pred = np.zeros((40, 80), bool)
    pred[10:13, 5:75] = True
    pred[10:13, 38:42] = False  # a 4-px gap
    ref_skel = np.zeros_like(pred)
    ref_skel[11, 5:75] = True
    truths = bc.true_breaks(ref_skel, pred)
    assert [len(t) for t in truths] == [4]

    def bridge(y0: int, y1: int) -> SimpleNamespace:
        return SimpleNamespace(bbox=(y0, y1, 38, 42), patch=np.ones((y1 - y0, 4), bool))

    assert bc.match_bridges_fixed([bridge(10, 13)], truths, pred) == (1, 1)  # fills the gap
    # Beside the gap (3 px below, not joining the sides along the run): at the break, but it fixes nothing.
    assert bc.match_bridges_fixed([bridge(14, 16)], truths, pred) == (0, 0)
    far = SimpleNamespace(bbox=(30, 33, 10, 14), patch=np.ones((3, 4), bool))
    assert bc.match_bridges_fixed([far, bridge(10, 13)], truths, pred) == (1, 1)
