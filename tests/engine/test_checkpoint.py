import pickle
import re

import pytest
import torch

from model_core.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from model_core.errors import CheckpointError
from model_core.model import PRESETS, ModelConfig, build_model, count_parameters
from model_core.preprocess import PreprocessConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("micro"))
    ckpt = make_checkpoint(model, PreprocessConfig(fov_diameter=321.0), {"name": "m", "version": "3", "threshold": 0.4})
    return save_checkpoint(tmp_path / "m.pt", ckpt), model


def test_round_trip_rebuilds_the_same_network(saved):
    path, model = saved
    ckpt = load_checkpoint(path)
    assert ckpt.model_config == model.config and ckpt.preprocess.fov_diameter == 321.0
    assert (ckpt.name, ckpt.version, ckpt.threshold) == ("m", "3", 0.4)
    rebuilt = ckpt.build()
    x = torch.rand(1, 1, 32, 32)
    model.eval()
    assert torch.equal(rebuilt(x), model(x))


def test_truncated_file_is_a_clear_error(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape("bad.pt: not a loadable checkpoint")):
        load_checkpoint(bad)


def test_foreign_and_tampered_files(tmp_path, saved):
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a Retina Desktop checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.bias"] += 1
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "tampered.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        load_checkpoint(tmp_path / "future.pt")


def _edited(path, tmp_path, edit, name="edited.pt"):
    """The checkpoint with one field edited by hand (only the weights are covered by the sha256)."""
    from model_core.checkpoint import weights_sha256

    payload = torch.load(path, weights_only=True)
    edit(payload)
    payload["sha256"] = weights_sha256(payload["state_dict"])
    torch.save(payload, tmp_path / name)
    return tmp_path / name


def _set(section, key, value):
    return lambda p: p[section].__setitem__(key, value)


def _nan_weights(p):
    p["state_dict"]["head.bias"] += float("nan")


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("metadata", "threshold", "abc"), "its threshold 'abc' is not a number between 0 and 1"),
        (_set("metadata", "threshold", None), "its threshold None is not a number between 0 and 1"),
        (_set("metadata", "threshold", 7.0), "its threshold 7.0 is not a number between 0 and 1"),
        (_set("metadata", "threshold", float("nan")), "its threshold nan is not a number between 0 and 1"),
        (_set("preprocess", "clahe_tiles", 0), "clahe_tiles must be a whole number from 1 to 64, got 0"),
        (_set("preprocess", "clahe_tiles", "8"), "clahe_tiles must be a whole number from 1 to 64, got '8'"),
        (_set("preprocess", "clahe_clip", -1.0), "clahe_clip must be a number above 0, got -1.0"),
        (_set("preprocess", "fov_diameter", float("nan")), "fov_diameter must be off (None) or a number of pixels"),
        (_set("preprocess", "fov_diameter", "540"), "fov_diameter must be off (None) or a number of pixels"),
        (_set("model_config", "in_channels", 3), "the model must read 1 or 4 channels and write 1, got 3 and 1"),
        (_set("model_config", "out_channels", 2), "the model must read 1 or 4 channels and write 1, got 1 and 2"),
        (_set("model_config", "in_channels", 4), "is not a vessel model (it reads more than the green channel)"),
        (lambda p: p.__setitem__("format_version", "1"), "checkpoint format version '1' is not a version number"),
        (lambda p: p.__setitem__("format_version", -3), "checkpoint format version -3 is not a version number"),
        (_nan_weights, "its weights contain NaN or infinite values"),
    ],
)
def test_a_checkpoint_edited_by_hand_is_one_clear_error(tmp_path, saved, edit, message):
    path = _edited(saved[0], tmp_path, edit)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    line = str(exc.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


class _Exploit:
    def __reduce__(self):
        return (exec, ("open('/tmp/retina_pwned', 'w').write('x')",))


def test_pickled_code_is_never_executed(tmp_path):
    import os

    target = "/tmp/retina_pwned"
    if os.path.exists(target):
        os.unlink(target)
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": "retina-desktop-checkpoint", "x": _Exploit()}, fh)
    with pytest.raises(CheckpointError, match=re.escape("evil.pt")):
        load_checkpoint(tmp_path / "evil.pt")
    assert not os.path.exists(target)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_reference_preset_has_the_reference_size():
    n = count_parameters(build_model(ModelConfig.preset("reference")))
    assert 31e6 < n < 36e6
    assert ModelConfig.preset("reference").widths == PRESETS["reference"]
    with pytest.raises(ValueError, match="unknown preset"):
        ModelConfig.preset("huge")
