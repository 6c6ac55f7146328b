import dataclasses
import json

import numpy as np
import pytest

from model_core.checkpoint import load_checkpoint
from model_core.data import discover
from model_core.engine import CancelToken
from model_core.finetune import finetune, finetune_config, plan_split
from model_core.gate import (
    DRIFT_LIMIT,
    MIN_PHOTOS_TO_ACCEPT,
    THRESHOLD_STEP_LIMIT,
    GateEvidence,
    decide,
    paired_gain,
    tile_counts,
)
from model_core.model_store import DEFAULT_ID, ModelStore

from .conftest import write_synthetic_dataset


def _quick(**kw):
    return finetune_config(epochs=2, steps_per_epoch=4, batch_size=4, patch_size=64, **kw)


def test_split_holds_out_a_quarter_and_handles_one_image(tmp_path):
    samples = discover(write_synthetic_dataset(tmp_path / "d", n=5))
    plan = plan_split(samples)
    assert len(plan.val) == 1 and len(plan.train) == 4 and not set(plan.val) & set(plan.train)
    assert plan_split(samples) == plan  # deterministic
    one = plan_split(samples[:1])
    assert one.train == one.val and "cannot measure generalisation" in one.note
    with pytest.raises(ValueError):
        plan_split([])


def test_child_keeps_the_parents_loss_unless_told_otherwise(parent_and_data):
    parent, _ = parent_and_data
    generic = finetune_config()
    assert (generic.alpha, generic.beta) == (0.7, 0.3)
    trained = dict(parent.metadata["train_config"], alpha=0.5, beta=0.5, gamma=1.0, bce_weight=0.25)
    symmetric = dataclasses.replace(parent, metadata={**parent.metadata, "train_config": trained})
    cfg = finetune_config(symmetric)
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.bce_weight) == (0.5, 0.5, 1.0, 0.25)
    assert cfg.lr == generic.lr and cfg.l2sp_weight == generic.l2sp_weight  # only the loss is inherited
    assert finetune_config(symmetric, alpha=0.6).alpha == 0.6
    # A checkpoint without a usable training record (made elsewhere) gets the generic loss.
    assert finetune_config(dataclasses.replace(parent, metadata={})).alpha == generic.alpha
    assert finetune_config(dataclasses.replace(parent, metadata={"train_config": None})).alpha == generic.alpha
    odd = dict(trained, alpha=True, beta=float("nan"), gamma=-1.0, bce_weight="0.9")
    cfg = finetune_config(dataclasses.replace(parent, metadata={"train_config": odd}))
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.bce_weight) == (
        generic.alpha,
        generic.beta,
        generic.gamma,
        generic.bce_weight,
    )


def _evidence(**kw):
    base = dict(
        photos=2, tiles=32, parent_dice=0.70, child_dice=0.75, gain=0.05, gain_low=0.02, gain_high=0.08,
        drift=0.15, drift_source="unreviewed photos", threshold_before=0.50, threshold_after=0.60,
    )  # fmt: skip
    return GateEvidence(**{**base, **kw})


def test_gate_accepts_only_a_clear_gain_on_enough_photos_with_little_change_elsewhere():
    assert decide(_evidence(), "completed").verdict == "accept"
    # The new-user case: judged on one photo, its decisions flipped on 28.7 % elsewhere, threshold 0.50 -> 0.95.
    new_user = decide(_evidence(photos=1, drift=0.287, threshold_after=0.95), "completed")
    assert new_user.verdict == "ask"
    assert "fewer than 2 held-out photos" in new_user.reason and "more than 25%" in new_user.reason
    assert (
        "judged on 1 photo" in new_user.reason and "changes 29% of predictions on your other photos" in new_user.reason
    )
    assert "threshold 0.50 -> 0.95" in new_user.reason
    # Each doubt alone asks.
    assert decide(_evidence(drift=DRIFT_LIMIT + 0.01), "completed").verdict == "ask"
    assert decide(_evidence(threshold_after=0.50 + THRESHOLD_STEP_LIMIT + 0.05), "completed").verdict == "ask"
    assert decide(_evidence(gain_low=-0.01), "completed").verdict == "ask"
    assert decide(_evidence(photos=MIN_PHOTOS_TO_ACCEPT - 1), "completed").verdict == "ask"
    assert decide(_evidence(shared=True, photos=1), "completed").verdict == "ask"
    # A worse child, a failed or cancelled run, or no score is rejected.
    assert decide(_evidence(child_dice=0.69, gain=-0.01, gain_low=-0.03), "completed").verdict == "reject"
    assert decide(_evidence(), "non-finite loss at epoch 1, step 1").verdict == "reject"
    assert decide(_evidence(), "cancelled").verdict == "reject"
    assert decide(None, "completed").verdict == "reject"


def test_tile_counts_and_the_paired_bootstrap_by_hand():
    truth = np.zeros((8, 8), np.uint8)
    truth[:, 2] = 1  # one vertical vessel, 8 px
    fov = np.ones((8, 8), np.uint8)
    child = truth.copy()
    parent = truth.copy()
    parent[4:, 2] = 0  # the parent misses the lower half
    parent[0, 6] = 1  # and adds one false pixel
    counts_child = tile_counts([child], [truth], [fov])
    counts_parent = tile_counts([parent], [truth], [fov])
    assert counts_child.shape == (16, 3) and counts_child.sum(axis=0).tolist() == [8, 0, 0]
    assert counts_parent.sum(axis=0).tolist() == [4, 1, 4]
    before, after, low, high, tiles = paired_gain(counts_parent, counts_child)
    assert before == pytest.approx(2 * 4 / (2 * 4 + 1 + 4)) and after == 1.0
    assert tiles == 5  # the 4 tiles the vessel crosses and the one with the false pixel; empty tiles say nothing
    assert 0 <= low <= after - before <= high
    same = paired_gain(counts_child, counts_child)
    assert same[2] == same[3] == 0.0


def test_one_held_out_photo_never_activates_a_model_by_itself(parent_and_data, tmp_path):
    """The new-user trial: 2 training photos, 1 held out, 1 epoch. Whatever it scores, the grader decides."""
    parent, corrections = parent_and_data
    store = ModelStore(tmp_path / "models")
    before = store.active()
    out = finetune(
        parent, corrections[:3], finetune_config(epochs=1, steps_per_epoch=4, batch_size=4, patch_size=64), store=store
    )
    assert len(out.plan.train) == 2 and len(out.plan.val) == 1
    assert out.verdict in ("ask", "reject") and not out.accepted
    assert store.active() == before
    info = json.loads((out.version.path.parent / "version.json").read_text())
    assert info["verdict"] == out.verdict and info["evidence"]["photos"] == 1
    assert info["evidence"]["threshold_after"] == pytest.approx(out.result.checkpoint.threshold)


def test_finetune_changes_weights_and_writes_a_version(parent_and_data, tmp_path):
    parent, corrections = parent_and_data
    store = ModelStore(tmp_path / "models")
    out = finetune(parent, corrections, _quick(lr=1e-3), store=store, parent_id="p1")
    assert out.result.checkpoint.sha256 != parent.sha256
    v = out.version
    assert v is not None and v.path.is_file()
    info = json.loads((v.path.parent / "version.json").read_text())
    assert info["parent"] == "p1" and info["accepted"] == out.accepted
    assert sorted(info["images"]["train"] + info["images"]["val"]) == sorted(s.image.name for s in corrections)
    assert info["metrics"]["val_dice_before"] == pytest.approx(out.parent_dice)
    assert info["evidence"] == out.evidence.to_dict() and info["verdict"] == out.verdict
    assert info["settings"]["l2sp_weight"] > 0
    assert load_checkpoint(v.path).metadata["version"] == v.id
    active = store.active()
    assert (active is not None and active.id == v.id) == out.accepted


def test_a_model_made_worse_on_purpose_is_not_activated(parent_and_data, tmp_path):
    parent, corrections = parent_and_data
    store = ModelStore(tmp_path / "models")
    before = store.active()
    # A learning rate this large wrecks the weights within a few steps.
    out = finetune(parent, corrections, _quick(lr=5.0, l2sp_weight=0.0, grad_clip=1e6), store=store)
    assert not out.accepted
    assert store.active() == before
    if out.version is not None:  # kept for inspection, but not active
        assert json.loads((out.version.path.parent / "version.json").read_text())["accepted"] is False


def test_cancel_returns_promptly_and_keeps_the_active_model(parent_and_data, tmp_path):
    parent, corrections = parent_and_data
    store = ModelStore(tmp_path / "models")
    token = CancelToken()
    steps = []

    def on_step(epoch, step, loss):
        steps.append(step)
        token.cancel()

    out = finetune(
        parent,
        corrections,
        finetune_config(epochs=100, steps_per_epoch=50, batch_size=4, patch_size=64),
        store=store,
        on_step=on_step,
        cancel=token,
    )
    assert len(steps) == 1 and out.result.stop_reason == "cancelled" and not out.accepted
    assert out.version is None and not any(store.root.glob("v*"))


def test_nan_loss_aborts_cleanly(parent_and_data, tmp_path, monkeypatch):
    parent, corrections = parent_and_data
    import model_core.finetune as finetune_mod

    real_prepare = finetune_mod.prepare

    def poisoned(sample, config):
        im = real_prepare(sample, config)
        im.x = np.full_like(im.x, np.nan)
        return im

    monkeypatch.setattr(finetune_mod, "prepare", poisoned)
    store = ModelStore(tmp_path / "models")
    out = finetune(parent, corrections, _quick(), store=store)
    assert out.result.failed and not out.accepted and "training failed" in out.reason
    assert store.active() is None or store.active().id == DEFAULT_ID


def test_store_switches_and_rolls_back(parent_and_data, tmp_path):
    parent, _ = parent_and_data
    store = ModelStore(tmp_path / "models")
    a = store.add(parent, {"label": "a"})
    b = store.add(parent, {"label": "b"})
    assert a.id < b.id and {a.id, b.id} <= {v.id for v in store.versions()}
    store.activate(b.id)
    assert store.active().id == b.id
    store.activate(a.id)
    assert store.active().id == a.id
    (tmp_path / "models" / "active.json").write_text("{broken")
    assert store.active() is None or store.active().id == DEFAULT_ID


def test_an_unusable_correction_is_left_out_not_fatal(parent_and_data, tmp_path):
    import shutil

    parent, corrections = parent_and_data
    folder = tmp_path / "c"
    shutil.copytree(corrections[0].image.parents[1], folder)
    from model_core.imageio import write_png_atomic

    write_png_atomic(folder / "masks" / "img1.png", np.zeros((5, 5), np.uint8))  # wrong size
    out = finetune(parent, discover(folder), _quick())
    assert "left out 1 unusable" in out.plan.note and "img1.png" in out.plan.note
    assert all(s.name != "img1" for s in out.plan.train + out.plan.val)


def test_corrected_pixels_are_where_the_parents_mask_and_the_correction_disagree(parent_and_data):
    from model_core.data import prepare
    from model_core.finetune import corrected_pixels
    from model_core.forgetting import network, probabilities

    parent, corrections = parent_and_data
    # A parent calibrated away from 0.5: its mask is taken at its own threshold.
    parent = dataclasses.replace(parent, metadata={**parent.metadata, "threshold": 0.3})
    im = prepare(corrections[0], parent.preprocess)
    p = probabilities(network(parent), im.x)
    parent_mask = p >= 0.3
    assert (parent_mask != (p >= 0.5)).any()  # the threshold matters on this image
    # The grader's correction: the parent's mask with one block added and one stroke taken away.
    corrected = parent_mask.copy()
    corrected[10:20, 10:20] = True
    corrected[40, :] = False
    im.vessels = corrected.astype(np.uint8)
    (changed,) = corrected_pixels(parent, [im], "cpu")
    assert np.array_equal(changed, parent_mask != corrected)
    assert changed[10:20, 10:20].sum() == (~parent_mask[10:20, 10:20]).sum() and changed.sum() > 0


def test_finetune_with_focus_samples_where_the_parent_was_corrected(parent_and_data, monkeypatch):
    import model_core.engine as engine
    from model_core.data import prepare
    from model_core.finetune import corrected_pixels

    parent, corrections = parent_and_data
    seen = {}
    real = engine.PatchSampler

    def spy(images, patch, **kw):
        seen.setdefault("images", images)
        seen.setdefault("focus", kw.get("focus"))
        seen.setdefault("focus_p", kw.get("focus_p"))
        return real(images, patch, **kw)

    monkeypatch.setattr(engine, "PatchSampler", spy)
    out = finetune(parent, corrections, _quick(focus_share=0.5, rehearsal_share=0.0), store=None)
    expected = corrected_pixels(parent, [prepare(s, parent.preprocess) for s in out.plan.train], "cpu")
    assert seen["focus_p"] == 0.5 and [im.name for im in seen["images"]] == [s.name for s in out.plan.train]
    assert len(seen["focus"]) == len(expected)
    assert all(np.array_equal(f, e) for f, e in zip(seen["focus"], expected, strict=True))
    assert any((f & (im.fov > 0)).any() for f, im in zip(seen["focus"], seen["images"], strict=False))


def test_correction_weights_cover_the_changed_pixels_and_a_margin_around_them():
    from model_core.finetune import CORRECTION_MARGIN_PX, correction_weights

    changed = np.zeros((21, 21), bool)
    changed[10, 10] = True
    (w,) = correction_weights([changed], 4.0)
    assert w.dtype == np.float32 and set(np.unique(w)) == {1.0, 4.0}
    m = CORRECTION_MARGIN_PX
    # Up to the margin along a row and a column, and not beyond; a disc, so the far corners stay at 1.
    assert (w[10, 10 - m : 10 + m + 1] == 4.0).all() and w[10, 10 - m - 1] == w[10, 10 + m + 1] == 1.0
    assert (w[10 - m : 10 + m + 1, 10] == 4.0).all() and w[10 - m - 1, 10] == 1.0
    assert w[10 - m, 10 - m] == 1.0
    (none,) = correction_weights([np.zeros((5, 5), bool)], 4.0)
    assert (none == 1.0).all()


def test_finetune_weighs_the_corrected_pixels_in_the_loss_and_records_it(parent_and_data, monkeypatch):
    import model_core.engine as engine
    from model_core.data import prepare
    from model_core.finetune import CORRECTION_MARGIN_PX, corrected_pixels, correction_weights

    parent, corrections = parent_and_data
    seen = {}
    real = engine.PatchSampler

    def spy(images, patch, **kw):
        seen.setdefault("weights", kw.get("weights"))
        return real(images, patch, **kw)

    monkeypatch.setattr(engine, "PatchSampler", spy)
    out = finetune(parent, corrections, _quick(correction_weight=3.0, rehearsal_share=0.0), store=None)
    train_imgs = [prepare(s, parent.preprocess) for s in out.plan.train]
    expected = correction_weights(corrected_pixels(parent, train_imgs, "cpu"), 3.0)
    assert len(seen["weights"]) == len(expected)
    assert all(np.array_equal(w, e) for w, e in zip(seen["weights"], expected, strict=True))
    meta = out.result.checkpoint.metadata
    assert meta["train_config"]["correction_weight"] == 3.0
    record = meta["correction_weighting"]
    assert record["weight"] == 3.0 and record["margin_px"] == CORRECTION_MARGIN_PX
    assert 0 < record["changed_share"] < record["weighted_share"] <= 1
    # Off (the default): no weight maps are made and nothing is recorded.
    seen.clear()
    off = finetune(parent, corrections, _quick(rehearsal_share=0.0), store=None)
    assert seen["weights"] is None and "correction_weighting" not in off.result.checkpoint.metadata


def test_train_refuses_a_correction_weight_without_weight_maps(parent_and_data):
    from model_core.data import prepare
    from model_core.engine import train

    parent, corrections = parent_and_data
    im = prepare(corrections[0], parent.preprocess)
    with pytest.raises(ValueError, match="correction_weight needs weight maps"):
        train([im], [im], parent.model_config, parent.preprocess, _quick(correction_weight=2.0), init=parent)
