"""The artery/vein network the grader's labels teach (model_core.av_net), its file and its gate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from model_core import av_net
from model_core.artery_vein import suggest_av
from model_core.errors import CheckpointError

from .test_calibre import draw_vessels

STEPS = 20  # enough for drawn vessels of two colours (accuracy 1.0 on a new photo); the app's default is 1500


def inverted_photo(seed: int):
    """Drawn vessels where the arteries are the DARKER ones: the automatic colour rule labels them wrong, so only
    what the labels teach can get them right."""
    rng = np.random.default_rng(seed)
    mask, av = draw_vessels(arterioles=(9,) * 6, venules=(9,) * 6, extra=False)
    photo = np.full((400, 400, 3), 160, np.uint8)
    photo[av == 1] = (100, 50, 30)
    photo[av == 2] = (140, 90, 50)
    photo = np.clip(photo + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
    return photo, mask, av


def _accuracy(labels, av):
    return float(np.mean(labels[av > 0] == av[av > 0]))


@pytest.fixture(scope="module")
def taught():
    photo, mask, av = inverted_photo(0)
    return av_net.teach([av_net.example(photo, mask, None, av, "one")], STEPS)


def test_labels_teach_what_the_automatic_suggestion_gets_wrong(taught):
    photo, mask, av = inverted_photo(1)
    assert _accuracy(suggest_av(photo, mask).labels, av) < 0.2  # the colour rule: lighter is artery
    labels = av_net.taught_suggestion(taught.net, photo, mask, None)
    assert _accuracy(labels, av) > 0.95
    assert set(np.unique(labels[~mask])) == {0}  # background stays unlabelled
    assert taught.steps == STEPS and not taught.cancelled


def test_uncertain_and_background_pixels_are_not_taught():
    photo, mask, av = inverted_photo(0)
    labels = av.copy()
    labels[av == 1] = 3  # every artery "uncertain": nothing of them may be taught
    ex = av_net.example(photo, mask, None, labels)
    assert set(np.unique(ex.labels)) == {0, 2}
    with pytest.raises(ValueError, match="no artery or vein labels"):
        av_net.teach([av_net.example(photo, mask, None, np.zeros_like(av))], 1)


def test_teaching_reports_progress_and_stops_when_cancelled():
    photo, mask, av = inverted_photo(0)
    done = []
    result = av_net.teach(
        [av_net.example(photo, mask, None, av)],
        50,
        progress=lambda d, t: done.append((d, t)),
        cancelled=lambda: bool(done),
    )
    assert done == [(10, 50)] and result.steps == 10 and result.cancelled


def test_the_file_round_trips_and_a_damaged_or_foreign_one_is_one_line(tmp_path, taught):
    model = av_net.AVNet.of(taught.net, {"taught_on": ["one"]})
    path = av_net.save_av_net(tmp_path / "av.pt", model)
    back = av_net.load_av_net(path)
    assert back.metadata == {"taught_on": ["one"]}
    photo, mask, _av = inverted_photo(1)
    a = av_net.pixel_logits(taught.net, photo, mask, None)
    b = av_net.pixel_logits(back.build(), photo, mask, None)
    assert np.allclose(a, b)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:1000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "retina-desktop-checkpoint", "state_dict": {}}, foreign)
    edited = tmp_path / "edited.pt"
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.bias"] += 1.0
    torch.save(payload, edited)
    for bad, why in (
        (damaged, "not a loadable artery/vein model"),
        (foreign, "not a Retina Desktop artery/vein model"),
        (edited, "do not match their recorded sha256"),
        (tmp_path / "missing.pt", "not found"),
    ):
        with pytest.raises(CheckpointError) as exc:
            av_net.load_av_net(bad)
        assert str(exc.value).startswith(f"{bad}: ") and why in str(exc.value) and "\n" not in str(exc.value)


def test_a_vessel_checkpoint_loader_refuses_the_av_network(tmp_path, taught):
    from model_core.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
    from model_core.preprocess import PreprocessConfig

    path = save_checkpoint(tmp_path / "m.pt", make_checkpoint(taught.net, PreprocessConfig()))
    with pytest.raises(CheckpointError, match="is not a vessel model"):
        load_checkpoint(path)


def test_the_paired_gain_and_its_interval_are_computed_over_segments():
    n = np.array([10, 10, 20])
    auto = np.array([5, 5, 10])  # 20 of 40
    taught = np.array([10, 8, 18])  # 36 of 40
    a, t, low, high, k = av_net.paired_accuracy_gain(n, auto, taught)
    assert (a, t, k) == (0.5, 0.9, 3)
    assert 0 < low <= 0.4 <= high <= 0.5  # every resample gains: each segment does
    a, t, low, high, k = av_net.paired_accuracy_gain(np.zeros(3, np.int64), auto * 0, taught * 0)
    assert k == 0 and math.isnan(a)


@pytest.mark.parametrize(
    "photos, before, taught, low, verdict, words",
    [
        (2, 0.70, 0.85, 0.05, "accept", "better: judged on 2 held-out photos (40 vessel pieces) against the automatic"),
        (1, 0.70, 0.85, 0.05, "ask", "fewer than 2 held-out photos"),
        (3, 0.70, 0.72, -0.01, "ask", "the gain is not clear of zero"),
        (3, 0.80, 0.70, -0.20, "reject", "worse: judged on 3 held-out photos"),
    ],
)
def test_the_gate_accepts_asks_or_rejects_on_its_evidence(photos, before, taught, low, verdict, words):
    ev = av_net.AVEvidence(photos, 40, 900, before, taught, low, low + 0.2)
    got, reason = av_net.decide_av(ev)
    assert got == verdict and words in reason
    assert f"judged on {photos} held-out photo" in reason and f"{before:.2f} -> {taught:.2f}" in reason
    assert av_net.AVEvidence.from_dict(ev.to_dict()) == ev
    assert av_net.decide_av(None)[0] == "reject"
    in_use = av_net.AVEvidence(photos, 40, 900, before, taught, low, low + 0.2, av_net.IN_USE)
    assert "against the taught suggestion in use:" in av_net.decide_av(in_use)[1]


def test_teach_from_labels_holds_photos_back_and_judges_on_them():
    photos = []
    for seed in range(2):
        photo, mask, av = inverted_photo(seed)
        photos.append(av_net.LabelledPhoto(f"p{seed}", photo, mask, None, av))
    with pytest.raises(ValueError, match="at least 2 photos"):
        av_net.teach_from_labels(photos[:1], STEPS)
    result = av_net.teach_from_labels(photos, STEPS)
    assert result.model.metadata["taught_on"] == ["p0"] and result.model.metadata["judged_on"] == ["p1"]
    ev = result.evidence
    assert ev is not None and ev.photos == 1 and ev.taught > 0.95 and ev.before < 0.2
    assert result.verdict == "ask" and "fewer than 2 held-out photos" in result.reason  # one photo judged


def test_measure_suggests_with_a_taught_network_given_av_model(tmp_path, taught, capsys):
    """``measure --av-model``: the calibre of the taught labels equals the one of the true labels, where the
    automatic suggestion (lighter is artery) gets these photos' kinds the wrong way round."""
    from model_core.cli import main
    from model_core.imageio import mask_to_png, write_png_atomic

    from .test_calibre import DISC, draw_vessels
    from .test_calibre_cli import _rows

    mask, av = draw_vessels()
    photo = np.full((*mask.shape, 3), 160, np.uint8)
    photo[av == 1], photo[av == 2] = (100, 50, 30), (140, 90, 50)
    write_png_atomic(tmp_path / "masks" / "a.png", mask_to_png(mask))
    write_png_atomic(tmp_path / "photos" / "a.png", photo)
    write_png_atomic(tmp_path / "av" / "a.png", av)
    (tmp_path / "disc.csv").write_text(f"image,x,y,diameter\na,{DISC.x},{DISC.y},{DISC.diameter}\n")
    model = av_net.save_av_net(tmp_path / "av.pt", av_net.AVNet.of(taught.net))
    base = ["measure", str(tmp_path / "masks"), "--disc", str(tmp_path / "disc.csv")]
    results = {}
    for name, extra in (
        ("labels", ["--av", str(tmp_path / "av")]),
        ("taught", ["--images", str(tmp_path / "photos"), "--av-model", str(model)]),
        ("automatic", ["--images", str(tmp_path / "photos")]),
    ):
        assert main([*base, "--csv", str(tmp_path / f"{name}.csv"), *extra]) == 0
        results[name] = _rows(tmp_path / f"{name}.csv")[1]["a.png"]
    assert results["taught"]["crae"] == results["labels"]["crae"] != results["automatic"]["crae"]
    assert results["taught"]["crve"] == results["labels"]["crve"]
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    capsys.readouterr()
    for extra, message in (
        (["--images", str(tmp_path / "photos"), "--av-model", str(garbage)], "not a loadable artery/vein model"),
        (["--av", str(tmp_path / "av"), "--av-model", str(model)], "--av-model suggests the labels that --av gives"),
    ):
        assert main([*base, "--csv", str(tmp_path / "bad.csv"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and not (tmp_path / "bad.csv").exists()


def test_sparse_labels_are_taught_in_full_steps_and_a_stop_while_judging_is_a_cancel():
    photo, mask, av = inverted_photo(0)
    sparse = np.zeros_like(av)
    ys, xs = np.nonzero(av == 1)
    sparse[ys[:30], xs[:30]] = 1  # 30 labelled pixels: most crops miss them
    result = av_net.teach([av_net.example(photo, mask, None, sparse)], 3, seed=3)
    assert result.steps == 3 and not result.cancelled  # a batch without labels is drawn again, not a lost step
    photos = [
        av_net.LabelledPhoto(f"p{i}", photo, mask, None, av)
        for i, (photo, mask, av) in enumerate(map(inverted_photo, range(2)))
    ]
    asked = itertools.count(1)  # asked once a step (2 steps), then before the first held-out photo: stop there
    stopped = av_net.teach_from_labels(photos, 2, cancelled=lambda: next(asked) > 2)
    assert stopped.cancelled and stopped.verdict == "reject" and stopped.evidence is None  # stopped while judging


def test_a_large_photo_is_taught_and_suggested_at_the_network_s_scale_and_answered_at_its_own():
    photo, mask, av = inverted_photo(0)
    big = 3  # 1200 px across: scaled down to the 540-px FOV, as a 3504x2336 photo is
    photo, mask, av = (np.kron(a, np.ones((big, big) + (1,) * (a.ndim - 2), a.dtype)) for a in (photo, mask, av))
    ex = av_net.example(photo, mask, None, av)
    assert ex.inputs.shape[1:] == ex.labels.shape and max(ex.labels.shape) == 540
    assert (ex.inputs[3][ex.labels > 0] > 0).all()  # labels only on the scaled vessels
    share = np.mean(ex.labels[ex.labels > 0] == 1)
    assert abs(share - np.mean(av[av > 0] == 1)) < 0.05  # arteries and veins kept in proportion
    logits = av_net.pixel_logits(av_net.build_av_net().eval(), photo, mask, None)
    assert logits.shape == mask.shape and logits.dtype == np.float32
