"""An interrupted training run carries on from the state it saved after its last epoch."""

import numpy as np
import pytest
import torch

from model_core.cli import main
from model_core.data import PreparedImage
from model_core.engine import TrainConfig, train
from model_core.model import ModelConfig
from model_core.preprocess import PreprocessConfig, model_input
from model_core.synthetic import make_fundus
from model_core.training_state import TrainingStateError, load_state, state_path_for

from .conftest import write_synthetic_dataset

PRE = PreprocessConfig(fov_diameter=None)
MICRO = ModelConfig.preset("micro")


def _image(seed: int) -> PreparedImage:
    f = make_fundus(96, 96, seed=seed)
    return PreparedImage(f"s{seed}", model_input(f.image, PRE), f.vessels.astype(np.uint8), f.fov.astype(np.uint8), 1)


def _cfg(**kw) -> TrainConfig:
    # Augmentation, the resampling round trip and the moving average all draw or keep state a resume must carry.
    base = dict(
        epochs=3, steps_per_epoch=3, batch_size=3, patch_size=32, augment=True, resample_p=0.5, ema_decay=0.9, seed=4
    )
    base.update(kw)
    return TrainConfig(**base)


# Deterministic CPU kernels and no oversubscription beside other tests.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Interrupted(Exception):
    pass


def _interrupt_after(epoch: int):
    def on_epoch(report) -> None:
        if report.epoch == epoch:
            raise Interrupted

    return on_epoch


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    images, val = [_image(1), _image(2)], [_image(3)]
    whole = train(images, val, MICRO, PRE, _cfg(), state_path=tmp_path / "whole.state")
    with pytest.raises(Interrupted):
        train(images, val, MICRO, PRE, _cfg(), state_path=tmp_path / "cut.state", on_epoch=_interrupt_after(1))
    assert load_state(tmp_path / "cut.state").epoch == 1
    resumed = train(images, val, MICRO, PRE, _cfg(), state_path=tmp_path / "cut.state", resume=True)

    assert resumed.checkpoint.sha256 == whole.checkpoint.sha256
    assert [r.val_dice for r in resumed.history] == [r.val_dice for r in whole.history]
    last_whole, last_cut = load_state(tmp_path / "whole.state"), load_state(tmp_path / "cut.state")
    assert last_cut.epoch == last_whole.epoch == 3
    for name, tensor in last_whole.model.items():
        assert torch.equal(tensor, last_cut.model[name]), name
    # Without the saved generators the resumed run would draw other patches: the check above can fail.
    other = train(images, val, MICRO, PRE, _cfg(seed=5))
    assert other.checkpoint.sha256 != whole.checkpoint.sha256


def test_a_state_from_other_settings_or_images_is_refused(tmp_path):
    images, val = [_image(1)], [_image(3)]
    with pytest.raises(Interrupted):
        train(images, val, MICRO, PRE, _cfg(), state_path=tmp_path / "s.state", on_epoch=_interrupt_after(1))
    with pytest.raises(TrainingStateError, match="another run"):
        train(images, val, MICRO, PRE, _cfg(lr=1e-4), state_path=tmp_path / "s.state", resume=True)
    with pytest.raises(TrainingStateError, match="another run"):
        train([_image(2)], val, MICRO, PRE, _cfg(), state_path=tmp_path / "s.state", resume=True)


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_a_missing_empty_or_damaged_state_is_one_clear_error(tmp_path, content):
    path = tmp_path / "s.state"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TrainingStateError) as err:
        train([_image(1)], [], MICRO, PRE, _cfg(), state_path=path, resume=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


TINY = ["--preset", "micro", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2", "--patch-size", "32"]


def test_cli_resumes_and_removes_the_state_when_done(tmp_path, capsys, monkeypatch):
    data = write_synthetic_dataset(tmp_path / "d", n=3)
    out = tmp_path / "m.pt"
    # An interruption after the first epoch, as a killed terminal leaves it: the state is there, the model not.
    import model_core.cli as cli

    real_epoch_line = cli._TrainingProgress.on_epoch

    def interrupt(self, report):
        real_epoch_line(self, report)
        if report.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._TrainingProgress, "on_epoch", interrupt)
    assert main(["train", str(data), "--out", str(out), *TINY]) != 0
    assert state_path_for(out).is_file() and not out.exists()
    monkeypatch.setattr(cli._TrainingProgress, "on_epoch", real_epoch_line)
    capsys.readouterr()

    assert main(["train", str(data), "--out", str(out), *TINY, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and out.is_file() and not state_path_for(out).exists()
    from model_core.checkpoint import load_checkpoint

    log = load_checkpoint(out).metadata["log"]
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]  # the epoch before the interruption is logged too

    assert main(["train", str(data), "--out", str(tmp_path / "n.pt"), *TINY, "--resume"]) == 2
    assert "no saved training state" in capsys.readouterr().err


def test_cli_trains_on_two_data_sets_each_holding_out_its_own_photos(tmp_path, capsys):
    a = write_synthetic_dataset(tmp_path / "a", n=5, seed=0)
    b = write_synthetic_dataset(tmp_path / "b", n=5, seed=10)
    for i, p in enumerate(sorted((b / "images").iterdir())):  # other names, as another data set has
        p.rename(p.with_name(f"other{i}.png"))
        (b / "masks" / f"img{i}.png").rename(b / "masks" / f"other{i}.png")
    out = tmp_path / "m.pt"
    assert main(["train", str(a), str(b), "--out", str(out), *TINY, "--camera-renderings", "1"]) == 0
    # 5 photos each: 4 train and 1 held out per data set; each training photo also rendered once as another
    # camera would take it, each held-out photo once for validation.
    assert "16 training and 4 validation images" in capsys.readouterr().err
    from model_core.checkpoint import load_checkpoint

    meta = load_checkpoint(out).metadata
    held = meta["val_images"]
    assert len(held) == 2 and any(n.startswith("img") for n in held) and any(n.startswith("other") for n in held)
    assert meta["camera_renderings"] == 1 and meta["data"] == [str(a), str(b)]
