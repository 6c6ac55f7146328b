"""CRAE, CRVE and AVR (model_core.calibre): the revised Knudtson formula on literal widths, and on drawn
vessels of known widths crossing a drawn zone B; the disc behind a ring; the A/V suggestion's pieces."""

import math

import numpy as np
import pytest

from model_core.artery_vein import fit_av_model, paint_segments, suggest_av
from model_core.calibre import Disc, knudtson, measure_calibre, zone_mask
from model_core.optic_disc import detect_disc, disc_from_zone_b
from model_core.skeleton import skeleton_graph, skeletonize

DISC = Disc(200.0, 200.0, 60.0)  # zone B: radii 60 to 90 px
ROWS = (-50, -30, -10, 10, 30, 50)
ARTERIOLES = (15, 13, 11, 9, 7, 5)  # right of the disc, one per row
VENULES = (17, 15, 13, 11, 9, 7)  # left of the disc
EXTRA_ARTERIOLE = 3  # a seventh, thinner arteriole at row +70: the six largest are used


def draw_vessels(arterioles=ARTERIOLES, venules=VENULES, extra=True):
    """Horizontal bars of odd widths from 20 px beside the disc centre out to the image edge: each crosses
    zone B once, as one skeleton segment. Returns (vessel mask, A/V labels)."""
    mask = np.zeros((400, 400), bool)
    av = np.zeros((400, 400), np.uint8)

    def bar(dy, width, right, label):
        y = 200 + dy
        half = width // 2
        cols = slice(220, 400) if right else slice(0, 181)
        mask[y - half : y + half + 1, cols] = True
        av[y - half : y + half + 1, cols] = label

    for dy, w in zip(ROWS, arterioles, strict=False):
        bar(dy, w, True, 1)
    for dy, w in zip(ROWS, venules, strict=False):
        bar(dy, w, False, 2)
    if extra:
        bar(70, EXTRA_ARTERIOLE, True, 1)
    return mask, av


def test_knudtson_pairs_largest_with_smallest_and_carries_the_middle():
    # Six arterioles 15, 13, 11, 9, 7, 5 by hand: round 1 pairs (15, 5), (13, 7), (11, 9).
    a1, a2, a3 = 0.88 * math.sqrt(15**2 + 5**2), 0.88 * math.sqrt(13**2 + 7**2), 0.88 * math.sqrt(11**2 + 9**2)
    assert a1 > a2 > a3  # 13.914, 12.993, 12.507
    # Round 2: three values, the largest with the smallest, the middle one carried over.
    b1 = 0.88 * math.sqrt(a1**2 + a3**2)
    # Round 3: the last pair.
    expected = 0.88 * math.sqrt(max(b1, a2) ** 2 + min(b1, a2) ** 2)
    assert knudtson([5, 7, 9, 11, 13, 15], 0.88) == pytest.approx(expected, rel=1e-12)
    assert knudtson([5, 7, 9, 11, 13, 15], 0.88) == pytest.approx(18.4565, abs=1e-3)
    # Only the six largest count.
    assert knudtson([1, 5, 7, 9, 11, 13, 15], 0.88) == knudtson([5, 7, 9, 11, 13, 15], 0.88)
    # Three values: (10, 6) paired, 8 carried; then the two remaining.
    w = 0.95 * math.sqrt(10**2 + 6**2)
    assert knudtson([6, 8, 10], 0.95) == pytest.approx(0.95 * math.sqrt(w**2 + 8**2))
    assert knudtson([7.5], 0.95) == 7.5
    with pytest.raises(ValueError):
        knudtson([], 0.88)


def test_crae_and_crve_of_drawn_vessels_equal_the_hand_computed_value():
    mask, av = draw_vessels()
    result = measure_calibre(mask, av, DISC)
    assert result.n_arterioles == 7 and result.n_venules == 6 and result.reason == ""
    # The same rounds as above, by hand, for the venules 17, 15, 13, 11, 9, 7.
    v = sorted(
        (0.95 * math.sqrt(17**2 + 7**2), 0.95 * math.sqrt(15**2 + 9**2), 0.95 * math.sqrt(13**2 + 11**2)),
        reverse=True,
    )
    v2 = sorted((0.95 * math.sqrt(v[0] ** 2 + v[2] ** 2), v[1]), reverse=True)
    crve = 0.95 * math.sqrt(v2[0] ** 2 + v2[1] ** 2)
    a = sorted(
        (0.88 * math.sqrt(15**2 + 5**2), 0.88 * math.sqrt(13**2 + 7**2), 0.88 * math.sqrt(11**2 + 9**2)),
        reverse=True,
    )
    a2 = sorted((0.88 * math.sqrt(a[0] ** 2 + a[2] ** 2), a[1]), reverse=True)
    crae = 0.88 * math.sqrt(a2[0] ** 2 + a2[1] ** 2)
    assert result.crae == pytest.approx(crae, rel=0.005)
    assert result.crve == pytest.approx(crve, rel=0.005)
    assert result.avr == pytest.approx(crae / crve, rel=0.01)
    assert sorted(round(u.width_px, 3) for u in result.used if u.kind == 1) == sorted(ARTERIOLES)
    assert result.calibre_method == "knudtson-revised-2003/area-median;px" and result.unit == "px"


def test_a_scale_turns_pixels_into_micrometres_and_is_recorded():
    mask, av = draw_vessels()
    px = measure_calibre(mask, av, DISC)
    um = measure_calibre(mask, av, DISC, um_per_px=2.5)
    disc_um = measure_calibre(mask, av, DISC, disc_um=1800)
    assert um.crae == pytest.approx(px.crae * 2.5) and um.unit == "um"
    assert disc_um.crve == pytest.approx(px.crve * 1800 / 60)
    assert um.avr == pytest.approx(px.avr) and disc_um.avr == pytest.approx(px.avr)
    assert um.calibre_method.endswith(";um_per_px=2.5") and disc_um.calibre_method.endswith(";disc_um=1800")


def test_fewer_than_six_of_a_kind_gives_no_value_and_says_why():
    mask, av = draw_vessels(venules=VENULES[:5])
    result = measure_calibre(mask, av, DISC)
    assert result.crve is None and result.avr is None and result.crae is not None
    assert result.n_venules == 5 and result.reason == "5 venules in zone B, 6 needed"


def test_uncertain_and_unlabelled_vessels_are_left_out():
    mask, av = draw_vessels()
    av[av == 2] = 3  # every venule uncertain
    result = measure_calibre(mask, av, DISC)
    assert result.n_venules == 0 and result.crve is None
    with pytest.raises(ValueError, match="differ in size"):
        measure_calibre(mask, av[:-1], DISC)


def test_vessels_outside_zone_b_do_not_count():
    mask, av = draw_vessels()
    far = Disc(200.0, 200.0, 20.0)  # zone B 20-30 px: the bars start 20 px out and only their ends lie in it
    assert measure_calibre(mask, av, far).n_arterioles < 7


def test_the_disc_behind_a_drawn_ring():
    ring = zone_mask((584, 565), Disc(90.3, 260.7, 80.0))  # cut by the image's left edge, as DRIVE's 01_test
    disc = disc_from_zone_b(ring)
    assert disc.x == pytest.approx(90.3, abs=0.5) and disc.y == pytest.approx(260.7, abs=0.5)
    assert disc.diameter == pytest.approx(80.0, abs=1.0)
    with pytest.raises(ValueError):
        disc_from_zone_b(np.zeros((50, 50), bool))


def test_detect_disc_finds_a_bright_blob_where_vessels_converge():
    h, w = 300, 320
    yy, xx = np.mgrid[:h, :w]
    fov = (xx - 160) ** 2 + (yy - 150) ** 2 < 140**2
    brightness = 90 + 120 * np.exp(-((xx - 230) ** 2 + (yy - 140) ** 2) / (2 * 15.0**2))
    photo = np.where(fov[..., None], np.stack([brightness, brightness * 0.6, brightness * 0.3], -1), 0).astype(np.uint8)
    vessels = np.zeros((h, w), bool)
    for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        t = np.linspace(0, 110, 400)
        ys = np.clip((140 + t * np.sin(angle)).astype(int), 0, h - 1)
        xs = np.clip((230 + t * np.cos(angle)).astype(int), 0, w - 1)
        vessels[ys, xs] = True
    vessels &= fov
    disc = detect_disc(photo, vessels, fov)
    assert disc is not None
    assert math.hypot(disc.x - 230, disc.y - 140) < 0.25 * disc.diameter
    assert disc.diameter == pytest.approx(280 / 7, rel=0.05)
    assert detect_disc(np.zeros((64, 64, 3), np.uint8)) is None  # no field of view: no disc


def test_labels_painted_from_the_skeleton_cover_each_vessel_with_its_segment_label():
    mask, _ = draw_vessels(extra=False)
    graph = skeleton_graph(skeletonize(mask))
    ys = np.zeros(graph.segments + 1)
    for k in range(1, graph.segments + 1):  # artery where the segment lies right of the disc
        ys[k] = 1.0 if graph.cols[graph.label == k].mean() > 200 else -1.0
    painted = paint_segments(graph, ys, mask)
    assert (painted[mask & (np.arange(400) > 200)[None, :]] == 1).all()
    assert (painted[mask & (np.arange(400) < 200)[None, :]] == 2).all()
    assert (painted[~mask] == 0).all()


def test_suggestion_calls_lighter_vessels_arteries_and_a_model_learns_from_labels():
    rng = np.random.default_rng(0)
    mask, av = draw_vessels(arterioles=(9,) * 6, venules=(9,) * 6, extra=False)
    photo = np.full((400, 400, 3), 160, np.uint8)
    photo[av == 1] = (140, 90, 50)  # arteries: lighter
    photo[av == 2] = (100, 50, 30)
    photo = np.clip(photo + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
    suggestion = suggest_av(photo, mask)
    assert np.mean(suggestion.labels[av > 0] == av[av > 0]) > 0.95
    from model_core.artery_vein import photo_features

    graph, feats = photo_features(photo, mask)
    lab = av[graph.rows, graph.cols]
    seg = np.maximum(graph.label, 0)
    arteries = np.bincount(seg, weights=lab == 1, minlength=graph.segments + 1)
    veins = np.bincount(seg, weights=lab == 2, minlength=graph.segments + 1)
    model = fit_av_model([(feats, arteries, veins)])
    taught = suggest_av(photo, mask, model=model)
    assert np.mean(taught.labels[av > 0] == av[av > 0]) > 0.95
    with pytest.raises(ValueError):
        fit_av_model([(feats, np.zeros_like(arteries), np.zeros_like(veins))])
