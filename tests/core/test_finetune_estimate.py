"""The fine-tune estimate follows the engine's stopping rule (hand-computed: 20 steps per epoch, +15 % for
each epoch's validation, one validation of the parent first, 5 s start-up)."""

from __future__ import annotations

import pytest

from retina_desktop.core.model.finetune_job import budget_overrides, estimate_epochs, estimate_seconds


def test_one_minute_at_0_6_s_per_step_fits_four_epochs():
    # An epoch: 20 x 0.6 s = 12 s of steps + 1.8 s validation = 13.8 s; the first validation takes 1.8 s,
    # so epochs start while 1.8 + n x 13.8 <= 60: n = 4 (an estimate of "≈ 0 epochs" here was wrong: a run did 4).
    ov = budget_overrides("cpu", minutes=1)
    assert estimate_epochs(0.6, ov) == 4
    assert estimate_seconds(0.6, ov) == pytest.approx(5.0 + 1.8 + 4 * 13.8)


def test_a_slow_device_still_does_one_epoch():
    ov = budget_overrides("cpu", minutes=1)
    assert estimate_epochs(4.0, ov) == 1  # 20 x 4 s x 1.15 = 92 s > 60 s, and the engine runs one anyway
    assert estimate_seconds(4.0, ov) == pytest.approx(5.0 + 12.0 + 92.0)


def test_an_epoch_budget_runs_every_epoch():
    ov = budget_overrides("cpu", epochs=30)
    assert estimate_epochs(0.5, ov) == 30
    assert estimate_seconds(0.5, ov) == pytest.approx(5.0 + 1.5 + 30 * 11.5)


def test_a_long_time_budget_is_capped_by_the_epoch_limit():
    ov = {**budget_overrides("cpu", minutes=600), "epochs": 12}
    assert estimate_epochs(0.1, ov) == 12
