"""Snapping a trace click onto the ridge: it lands on the nearest vessel, not on the strongest one in reach."""

from __future__ import annotations

import numpy as np

from retina_desktop.core.vessels.tracing import TraceCost


def two_vessels() -> np.ndarray:
    """A strong vessel on row 20 and, 4 px below, a faint one (probability 0.35) on row 24: a thin vessel
    the model is unsure of, beside one it is sure of. Within 3 px of the faint vessel, the cheapest pixel
    is on the strong vessel's flank (row 21)."""
    prob = np.zeros((40, 60), np.float32)
    prob[20, :] = 0.95
    prob[24, :] = 0.35
    return prob


def test_an_exact_click_on_a_faint_vessel_beside_a_strong_one_stays_on_it():
    cost = TraceCost.from_prediction(two_vessels())
    assert cost.cost[21, 30] < cost.cost[24, 30]  # the old rule, the cheapest pixel, would land on row 21
    assert cost.snap((30.5, 24.5), 3.0) == (30.5, 24.5)
    # One pixel off the faint vessel, away from the strong one: onto the faint vessel.
    assert cost.snap((30.5, 25.5), 3.0) == (30.5, 24.5)
    # Nearer the strong vessel: onto it.
    assert cost.snap((30.5, 21.5), 3.0) == (30.5, 20.5)


def test_a_click_off_any_ridge_takes_the_cheapest_pixel_in_reach():
    prob = np.zeros((40, 60), np.float32)
    prob[20, :] = 0.9
    cost = TraceCost.from_prediction(prob)
    assert cost.snap((30.5, 22.5), 3.0) == (30.5, 20.5)
    # Beyond the radius nothing qualifies as a ridge (all flat): the cheapest pixel in reach, wherever it is.
    far = cost.snap((30.5, 30.5), 3.0)
    assert abs(far[1] - 30.5) <= 3


def test_a_ridge_below_the_floor_is_not_snapped_to():
    prob = np.zeros((40, 60), np.float32)
    prob[20, :] = 0.9
    prob[23, :] = 0.02  # noise, not a vessel
    cost = TraceCost.from_prediction(prob)
    assert cost.snap((30.5, 23.5), 3.0) == (30.5, 20.5)


def test_a_trace_along_a_vessel_the_model_missed_is_painted_one_pixel_wide():
    from retina_desktop.core.vessels.tracing import trace

    prob = np.zeros((40, 80), np.float32)
    prob[20, 5:75] = 0.3  # below the threshold: the prediction gives no width
    cost = TraceCost.from_prediction(prob)
    stroke = trace(cost, [(10.5, 20.5), (70.5, 20.5)])
    m = np.zeros(prob.shape, bool)
    stroke.paint(m)
    assert m[20, 10:71].all()
    assert m.sum() == 61  # the row from x = 10 to 70 and nothing beside it


def test_a_one_pixel_trace_paints_exactly_the_pixels_it_traced():
    from retina_desktop.core.vessels.tracing import path_stroke

    # A route along a curved 1-px ridge (a sine), as the tracer finds it.
    h, w = 120, 200
    prob = np.zeros((h, w), np.float32)
    t = np.linspace(0, 1, 3000)
    xs, ys = 10 + 180 * t, 60 + 35 * np.sin(2 * np.pi * t * 1.3)
    prob[ys.astype(int), xs.astype(int)] = 0.9
    cost = TraceCost.from_prediction(prob)
    path = cost.route((10.5, float(int(ys[0])) + 0.5), (189.5, float(int(ys[-1])) + 0.5))
    traced = np.zeros((h, w), bool)
    traced[(path[:, 1] - 0.5).astype(int), (path[:, 0] - 0.5).astype(int)] = True
    m = np.zeros((h, w), bool)
    path_stroke(path, 0.5, m.shape).paint(m)
    assert np.array_equal(m, traced)
    # Wider strokes follow the smoothed path and cover the traced pixels.
    wide = np.zeros((h, w), bool)
    path_stroke(path, 1.5, m.shape).paint(wide)
    assert (wide & traced).sum() == traced.sum() and wide.sum() > 2 * traced.sum()


def test_a_click_inside_a_wide_predicted_vessel_lands_on_its_centre_line():
    from retina_desktop.core.painting import paint_segment

    m = np.zeros((100, 200), bool)
    paint_segment(m, (10.5, 50.5), (190.5, 50.5), 4.5, True)  # rows 46-55: its centre rows are 50 and 51
    rng = np.random.default_rng(0)
    prob = np.clip(m * 0.97 + rng.normal(0, 0.03, m.shape), 0, 1).astype(np.float32)  # bumpy inside
    cost = TraceCost.from_prediction(prob)
    for d in (-3, -2, -1, 0, 1, 2, 3):
        x, y = cost.snap((100.5, 50.5 + d), 3.0)
        assert y in (50.5, 51.5) and abs(x - 100.5) <= 3  # on the centre line, wherever along it
