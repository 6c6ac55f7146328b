"""Weight-space interpolation, data-free rehearsal and the drift measure (model_core.forgetting)."""

import math

import numpy as np
import pytest
import torch

from model_core.data import PatchSampler, discover, prepare
from model_core.engine import soft_target_loss, validate
from model_core.finetune import finetune
from model_core.forgetting import (
    ALPHA_GRID,
    RehearsalImage,
    choose_alpha,
    interpolate,
    network,
    photo_rehearsal,
    prediction_drift,
    probabilities,
    synthetic_rehearsal,
)
from model_core.model_store import ModelStore

from .conftest import write_synthetic_dataset
from .test_finetune import _quick


def test_interpolation_lies_on_the_line_and_keeps_counters():
    parent = {"w": torch.tensor([0.0, 2.0, -4.0]), "n": torch.tensor(3)}
    child = {"w": torch.tensor([1.0, 0.0, 4.0]), "n": torch.tensor(7)}
    assert torch.equal(interpolate(parent, child, 0.0)["w"], parent["w"])
    assert torch.equal(interpolate(parent, child, 1.0)["w"], child["w"])
    mid = interpolate(parent, child, 0.25)
    assert torch.allclose(mid["w"], torch.tensor([0.25, 1.5, -2.0]))  # 0.75·parent + 0.25·child
    assert int(mid["n"]) == 7  # BatchNorm's step counter is not averaged


def test_alpha_is_the_smallest_that_keeps_most_of_the_gain():
    gains = {0.0: 0.0, 0.2: 0.010, 0.4: 0.030, 0.6: 0.038, 0.8: 0.041, 1.0: 0.040}
    assert choose_alpha(gains, keep=0.9) == 0.6  # 0.038 >= 0.9 × 0.041; 0.030 is not
    assert choose_alpha(gains, keep=0.5) == 0.4
    assert choose_alpha(gains, keep=1.0) == 0.8
    # No gain anywhere: the child itself, which the gate then refuses.
    assert choose_alpha({0.0: 0.0, 0.5: -0.01, 1.0: -0.02}) == 1.0
    assert ALPHA_GRID[0] == 0.0 and ALPHA_GRID[-1] == 1.0 and len(ALPHA_GRID) == 11


def test_soft_target_loss_is_binary_cross_entropy_over_taught_pixels():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 5.0]])
    target = torch.tensor([[0.5, 1.0], [0.2, 0.0]])
    weight = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    p = torch.sigmoid(logits)
    by_hand = [
        -(t * math.log(q) + (1 - t) * math.log(1 - q)) for q, t in ((p[0, 0], 0.5), (p[0, 1], 1.0), (p[1, 0], 0.2))
    ]
    assert float(soft_target_loss(logits, target, weight)) == pytest.approx(
        sum(float(v) for v in by_hand) / 3, rel=1e-5
    )


def test_drift_is_the_share_of_the_vessel_maps_that_differs(parent_and_data):
    parent, _ = parent_and_data
    images = synthetic_rehearsal(parent, count=2, seed=1)
    net = network(parent)
    assert prediction_drift(0.5, net, 0.5, images) == 0.0
    # The same network cut at two thresholds: the drift is 1 − IoU of the two masks, counted by hand.
    changed = union = 0
    for im in images:
        p = probabilities(net, im.x)
        a, b = (p >= 0.5) & (im.fov > 0), (p >= 0.3) & (im.fov > 0)
        changed += np.count_nonzero(a ^ b)
        union += np.count_nonzero(a | b)
    assert union > 0 and changed > 0
    assert prediction_drift(0.5, net, 0.3, images) == pytest.approx(changed / union)


def test_rehearsal_labels_are_the_parents_and_photos_teach_only_confident_pixels(parent_and_data, tmp_path):
    parent, _ = parent_and_data
    net = network(parent)
    (synth,) = synthetic_rehearsal(parent, count=1)
    np.testing.assert_allclose(synth.target, probabilities(net, synth.x), atol=1e-6)
    assert np.array_equal(synth.weight, synth.fov)  # synthetic photos: every FOV pixel is taught
    photos = discover(write_synthetic_dataset(tmp_path / "u", n=2, size=(128, 128), seed=77))
    labelled = photo_rehearsal(parent, [s.image for s in photos] + [tmp_path / "gone.png"])
    assert [im.name for im in labelled] == [s.image.name for s in photos]  # the unreadable one is skipped
    for im in labelled:
        confident = (np.abs(im.target - 0.5) >= 0.4) & (im.fov > 0)
        assert np.array_equal(im.weight > 0, confident)
    # The patch sampler draws rehearsal patches around taught pixels only.
    im = RehearsalImage("one", synth.x, synth.target, np.zeros_like(synth.weight), synth.fov)
    im.weight[40, 50] = 1
    _x, y, v = PatchSampler([im.as_prepared()], 16, augment=False).batch(3)
    assert (v[:, 0, 8, 8] == 1).all() and np.allclose(y[:, 0, 8, 8], synth.target[40, 50])


def test_finetune_keeps_the_interpolated_weights_it_scored(parent_and_data, tmp_path):
    parent, corrections = parent_and_data
    unreviewed = discover(write_synthetic_dataset(tmp_path / "u", n=2, size=(128, 128), seed=78))
    out = finetune(
        parent,
        corrections,
        _quick(lr=3e-3, wise_keep=0.9, rehearsal_share=0.25),
        store=ModelStore(tmp_path / "m"),
        unreviewed=[s.image for s in unreviewed],
    )
    kept = out.result.checkpoint
    assert out.alpha in ALPHA_GRID and set(out.alpha_scores) == set(ALPHA_GRID)
    # α = 0 is the parent: its score is the parent's validation Dice the gate compares with.
    assert out.alpha_scores[0.0] == pytest.approx(out.parent_dice)
    assert out.new_dice == pytest.approx(out.alpha_scores[out.alpha])
    # The kept weights score what the gate was told, re-measured from the saved checkpoint.
    val = [prepare(s, parent.preprocess) for s in out.plan.val]
    assert validate(network(kept), val, torch.device("cpu"))[0] == pytest.approx(out.new_dice, abs=1e-6)
    assert kept.metadata["wise_alpha"] == out.alpha and out.version.info["wise"]["alpha"] == out.alpha
    # Drift is measured on the unreviewed photos, against the parent, with each model's threshold.
    photos = photo_rehearsal(parent, [s.image for s in unreviewed])
    expected = prediction_drift(parent.threshold, network(kept), kept.threshold, photos)
    assert out.drift_source == "unreviewed photos" and out.drift == pytest.approx(expected)
    assert out.version.info["rehearsal"] == {"photos": 2, "synthetic": 6}
