"""bench_peers.py's own arithmetic: the per-photo time from output times, the scores of one photo, the summary,
and the peer's threshold read from its script; and bench_forward.py's share of the fp32 limit. Synthetic arrays,
hand-computed figures; no model runs."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_peers")


@pytest.fixture(scope="module")
def bench_forward() -> ModuleType:
    return _load("bench_forward")


def test_per_photo_time_is_the_span_from_first_to_last_photo(bench: ModuleType) -> None:
    # Started at 100; photos done (in any order) at 104, 106, 105, 107: start-up and the first photo took 4 s,
    # then 3 s for 3 photos.
    per, first = bench.per_photo_seconds([106.0, 104.0, 107.0, 105.0], started=100.0)
    assert per == pytest.approx(1.0)
    assert first == pytest.approx(4.0)


def test_per_photo_time_of_one_photo_includes_start_up(bench: ModuleType) -> None:
    assert bench.per_photo_seconds([103.5], started=100.0) == pytest.approx((3.5, 3.5))
    with pytest.raises(ValueError):
        bench.per_photo_seconds([], started=100.0)


def test_photo_scores_half_a_vessel_found(bench: ModuleType) -> None:
    truth = np.zeros((7, 9), bool)
    truth[3, 1:7] = True  # a 1-px vessel of 6 px: its own skeleton
    mask = np.zeros_like(truth)
    mask[3, 1:4] = True  # half of it found
    mask[0, 8] = True  # a false positive outside the field of view
    fov = np.ones_like(truth)
    fov[0, 8] = False
    prob = np.where(truth, 0.8, 0.1)
    prob[5, 5] = 0.9  # one background pixel inside the FOV above every vessel pixel
    s = bench.photo_scores(mask, prob, truth, fov)
    assert s["dice"] == pytest.approx(2 * 3 / (3 + 6))
    # Skeleton of the mask: 3 px, all on the vessel (precision 1); of the vessel: 6 px, 3 in the mask (0.5).
    assert s["cldice"] == pytest.approx(2 * 1 * 0.5 / 1.5)
    negatives = int(fov.sum()) - 6
    assert s["auc"] == pytest.approx((negatives - 1) / negatives)
    # Without the FOV the false positive counts.
    assert bench.photo_scores(mask, prob, truth, None)["dice"] == pytest.approx(2 * 3 / (4 + 6))


def test_observer_scores_have_no_auc(bench: ModuleType) -> None:
    truth = np.zeros((5, 5), bool)
    truth[2, :] = True
    s = bench.observer_scores(truth, truth, None)
    assert s["dice"] == 1.0 and s["cldice"] == 1.0 and math.isnan(s["auc"])


def test_mean_std_over_photos_skips_missing_scores(bench: ModuleType) -> None:
    stats = bench.mean_std(
        {"a": {"dice": 0.6, "auc": float("nan"), "cldice": 0.5}, "b": {"dice": 0.8, "auc": float("nan"), "cldice": 0.7}}
    )
    assert stats["mean"]["dice"] == pytest.approx(0.7) and stats["std"]["dice"] == pytest.approx(0.1)
    assert math.isnan(stats["mean"]["auc"]) and math.isnan(stats["std"]["auc"])
    assert bench._cell(stats["mean"]["auc"], stats["std"]["auc"]) == "—"
    assert bench._cell(0.7, 0.1) == "0.7000 ± 0.1000"


def test_peer_threshold_read_from_its_script(bench: ModuleType) -> None:
    line = 'cv2.imwrite(str(a.out / f"{p.stem}.png"), ((v > 0.4196) * 255).astype(np.uint8))'
    assert bench.peer_threshold(line) == pytest.approx(0.4196)
    assert bench.peer_threshold("no threshold here") is None


def test_share_of_the_fp32_limit(bench_forward: ModuleType) -> None:
    # 24 GFLOP in 0.5 s is 48 GFLOP/s: 40 % of a 120 GFLOP/s limit.
    assert bench_forward.share_of_limit(24e9, 0.5, 120.0) == pytest.approx(0.4)
