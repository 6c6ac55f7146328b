import threading

import numpy as np
import pytest
import torch

from model_core.data import PreparedImage
from model_core.engine import CancelToken, TrainConfig, train
from model_core.metrics import Confusion
from model_core.model import ModelConfig
from model_core.predictor import VesselPredictor
from model_core.preprocess import PreprocessConfig, model_input
from model_core.synthetic import make_fundus

PRE = PreprocessConfig(fov_diameter=None)


def _prepared(seed=5, size=128):
    f = make_fundus(size, size, seed=seed)
    return f, PreparedImage(
        f"s{seed}", model_input(f.image, PRE), f.vessels.astype(np.uint8), f.fov.astype(np.uint8), 1.0
    )


def _cfg(**kw):
    base = dict(epochs=8, steps_per_epoch=25, batch_size=4, patch_size=64, lr=1e-2, augment=False, patience=100)
    base.update(kw)
    return TrainConfig(**base)


# Deterministic CPU kernels and no oversubscription beside other tests.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_overfits_one_synthetic_vessel_image():
    f, im = _prepared()
    reports = []
    result = train([im], [im], ModelConfig.preset("micro"), PRE, _cfg(), on_epoch=reports.append)
    assert result.stop_reason == "completed" and len(reports) == 8
    # The best checkpoint, run through the public predictor on the original photo, reproduces the mask.
    prob = VesselPredictor(result.checkpoint, device="cpu").predict(f.image)
    assert Confusion.of(prob >= 0.5, f.vessels, f.fov).dice > 0.9
    assert result.best_val_dice == max(r.val_dice for r in reports) > 0.9
    assert result.checkpoint.metadata["best_epoch"] == result.best_epoch


def test_same_seed_gives_the_same_weights():
    _, im = _prepared()
    cfg = _cfg(epochs=2, steps_per_epoch=3, augment=True, seed=7)
    a = train([im], [im], ModelConfig.preset("micro"), PRE, cfg).checkpoint
    b = train([im], [im], ModelConfig.preset("micro"), PRE, cfg).checkpoint
    assert a.sha256 == b.sha256
    c = train(
        [im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=2, steps_per_epoch=3, augment=True, seed=8)
    ).checkpoint
    assert c.sha256 != a.sha256


def test_non_finite_loss_stops_and_keeps_the_last_good_weights():
    _, im = _prepared()
    good = train([im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=1, steps_per_epoch=2)).checkpoint
    poisoned = PreparedImage("nan", np.full_like(im.x, np.nan), im.vessels, im.fov, 1.0)
    result = train([poisoned], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=3, steps_per_epoch=2), init=good)
    assert result.failed and result.stop_reason.startswith("non-finite loss at epoch 1, step 1")
    assert result.checkpoint.sha256 == good.sha256
    assert all(torch.isfinite(t).all() for t in result.checkpoint.state_dict.values() if t.is_floating_point())


def test_cancel_from_another_thread_stops_promptly():
    _, im = _prepared()
    token = CancelToken()
    steps = []

    def on_step(epoch, step, loss):
        steps.append(step)
        if len(steps) == 3:
            threading.Thread(target=token.cancel).start()

    result = train(
        [im],
        [im],
        ModelConfig.preset("micro"),
        PRE,
        _cfg(epochs=50, steps_per_epoch=100),
        on_step=on_step,
        cancel=token,
    )
    assert result.stop_reason == "cancelled" and len(steps) < 10


def test_finetune_starts_from_init_and_reports_parent_dice():
    _, im = _prepared()
    parent = train([im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=2)).checkpoint
    _, other = _prepared(seed=9)
    result = train(
        [other],
        [im],
        ModelConfig.preset("tiny"),
        PRE,
        _cfg(epochs=1, steps_per_epoch=3, lr=1e-3, l2sp_weight=0.01, encoder_lr_scale=0.1),
        init=parent,
    )
    # The init's architecture wins over the model_config argument, and the parent was scored first.
    assert result.checkpoint.model_config == parent.model_config
    assert not np.isnan(result.initial_val_dice) and not np.isnan(result.best_val_dice)
    assert result.checkpoint.sha256 != parent.sha256


def test_time_budget_stops_training():
    _, im = _prepared()
    result = train([im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=1000, steps_per_epoch=2, minutes=0.05))
    assert result.stop_reason.startswith("time budget") and len(result.history) < 1000


@pytest.mark.parametrize("at_best", [False, True])
def test_selection_uses_dice_at_half_or_at_the_best_threshold(monkeypatch, at_best):
    from model_core import engine

    # Scripted validations (Dice at 0.5, AUC, best threshold, Dice there) that rank the epochs differently.
    script = iter([(0.70, 0.9, 0.30, 0.80), (0.75, 0.9, 0.40, 0.76), (0.60, 0.9, 0.20, 0.78)])
    monkeypatch.setattr(engine, "_validate_everywhere", lambda *a: next(script))
    _, im = _prepared()
    reports = []
    result = train(
        [im],
        [im],
        ModelConfig.preset("micro"),
        PRE,
        _cfg(epochs=3, steps_per_epoch=1, select_at_best_threshold=at_best),
        on_epoch=reports.append,
    )
    if at_best:
        assert [r.val_dice for r in reports] == [0.80, 0.76, 0.78]
        assert (result.best_epoch, result.threshold, result.best_val_dice) == (1, 0.30, 0.80)
    else:
        assert [r.val_dice for r in reports] == [0.70, 0.75, 0.60]
        assert (result.best_epoch, result.threshold, result.best_val_dice) == (2, 0.40, 0.75)
    assert result.checkpoint.metadata["val_threshold"] == result.threshold


def test_selection_at_the_best_threshold_on_a_real_validation():
    _, im = _prepared()
    result = train(
        [im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=2, steps_per_epoch=10, select_at_best_threshold=True)
    )
    from model_core.engine import validate

    net = result.checkpoint.build().eval()
    at_half, _, th, at_best = validate(net, [im], torch.device("cpu"))
    assert result.threshold == th and result.best_val_dice == pytest.approx(at_best, abs=1e-9)
    assert at_best >= at_half


def _train_recording_raw_weights(monkeypatch, init=None):
    """Trains 4 steps with ema_decay 0.6; returns the raw weights after each step and the saved checkpoint."""
    _, im = _prepared()
    raw = []
    update = torch.optim.swa_utils.AveragedModel.update_parameters

    def spy(self, model):  # called once per optimiser step, with the raw model
        raw.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        update(self, model)

    monkeypatch.setattr(torch.optim.swa_utils.AveragedModel, "update_parameters", spy)
    saved = train(
        [im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=1, steps_per_epoch=4, ema_decay=0.6), init=init
    ).checkpoint
    assert len(raw) == 4 and saved.metadata["train_config"]["ema_decay"] == 0.6
    return raw, saved


def _assert_average(saved, raw, keeps):
    """The saved floats are w1 averaged in with each later step's raw weights, keeping ``keeps[i]`` of the
    average at step i + 2; BatchNorm's step counters follow the raw model."""
    floats = [k for k, v in raw[0].items() if v.is_floating_point()]
    assert any("running_mean" in k for k in floats)  # BatchNorm statistics are averaged with the weights
    for k in floats:
        expected = raw[0][k]
        for keep, w in zip(keeps, raw[1:], strict=False):
            expected = keep * expected + (1 - keep) * w[k]
        torch.testing.assert_close(saved.state_dict[k], expected, rtol=1e-5, atol=1e-6)
    counters = [k for k in raw[0] if k.endswith("num_batches_tracked")]
    assert counters and all(int(saved.state_dict[k]) == int(raw[-1][k]) for k in counters)


def test_moving_average_from_random_weights_forgets_the_start_quickly(monkeypatch):
    raw, saved = _train_recording_raw_weights(monkeypatch)
    # timm's ramp (1 + n) / (10 + n), capped at 0.6: keeps 2/11, 3/12, 4/13 -- far below a plain mean's 1/2, 2/3, 3/4.
    _assert_average(saved, raw, [2 / 11, 3 / 12, 4 / 13])
    assert int(saved.state_dict[next(k for k in raw[0] if k.endswith("num_batches_tracked"))]) == 4


def test_moving_average_from_trained_weights_starts_as_a_plain_mean(monkeypatch):
    _, im = _prepared()
    parent = train([im], [im], ModelConfig.preset("micro"), PRE, _cfg(epochs=1, steps_per_epoch=2)).checkpoint
    raw, saved = _train_recording_raw_weights(monkeypatch, init=parent)
    # A plain mean while it weighs the newest weights more than 1 - 0.6 (steps 1-2), then the moving average:
    # (w1 + w2) / 2, then 0.6 * that + 0.4 * w3, then 0.6 * that + 0.4 * w4.
    _assert_average(saved, raw, [1 / 2, 0.6, 0.6])
