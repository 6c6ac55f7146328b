import pickle

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
    with pytest.raises(CheckpointError, match="bad.pt: not a loadable checkpoint"):
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
    with pytest.raises(CheckpointError, match="evil.pt"):
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
