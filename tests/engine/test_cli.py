import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from model_core import resources
from model_core.checkpoint import load_checkpoint
from model_core.cli import main
from model_core.imageio import read_raw, write_png_atomic

from .conftest import write_synthetic_dataset

TINY_TRAIN = [
    "--preset",
    "micro",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--batch-size",
    "2",
    "--patch-size",
    "32",
    "--fov-diameter",
    "0",
    "--device",
    "cpu",
]


def test_predict_writes_mask_and_16_bit_probability_of_the_input_size(tmp_path, micro_checkpoint_path, fundus, capsys):
    write_png_atomic(tmp_path / "in" / "a.png", fundus.image)
    odd = np.random.default_rng(0).integers(0, 255, (41, 67, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "b.tif"), odd)
    rc = main(
        [
            "predict",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(micro_checkpoint_path),
            "--threshold",
            "0.5",
        ]
    )
    assert rc == 0
    for stem, shape in (("a", (96, 104)), ("b", (41, 67))):
        mask = read_raw(tmp_path / "out" / f"{stem}.png")
        prob = read_raw(tmp_path / "out" / f"{stem}_prob.png")
        assert mask.shape == shape and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert prob.shape == shape and prob.dtype == np.uint16
        # The mask is the thresholded probability map.
        assert np.array_equal(mask == 255, prob.astype(np.float64) / 65535 >= 0.5)
    assert "wrote 2 of 2 images" in capsys.readouterr().out


def test_predict_skips_unreadable_input_and_exits_non_zero(tmp_path, micro_checkpoint_path, fundus, capsys):
    write_png_atomic(tmp_path / "good.png", fundus.image)
    (tmp_path / "bad.png").write_bytes(b"junk")
    rc = main(
        [
            "predict",
            str(tmp_path / "bad.png"),
            str(tmp_path / "good.png"),
            str(tmp_path / "missing.png"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(micro_checkpoint_path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert (tmp_path / "out" / "good.png").is_file() and not (tmp_path / "out" / "bad.png").exists()
    assert "bad.png: not a readable image" in err and "missing.png: file not found" in err
    assert "Traceback" not in err


def test_evaluate_prints_metrics_and_writes_json(tmp_path, micro_checkpoint_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=2)
    rc = main(["evaluate", str(data), "--weights", str(micro_checkpoint_path), "--json", str(tmp_path / "m.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dice" in out and "pooled" in out
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["images"] == 2 and set(summary["per_image"]) == {"img0", "img1"}
    assert 0 <= summary["mean"]["dice"] <= 1 and 0 <= summary["pooled"]["auc"] <= 1


def test_evaluate_with_fov_masks(tmp_path, micro_checkpoint_path):
    data = write_synthetic_dataset(tmp_path / "d", n=1)
    (tmp_path / "fov").mkdir()
    write_png_atomic(tmp_path / "fov" / "img0.png", np.zeros((96, 104), np.uint8) + 255)
    rc = main(
        [
            "evaluate",
            str(data),
            "--weights",
            str(micro_checkpoint_path),
            "--fov",
            str(tmp_path / "fov"),
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0 and json.loads((tmp_path / "m.json").read_text())["fov"] == str(tmp_path / "fov")


def test_bad_data_set_is_one_clear_line(tmp_path, micro_checkpoint_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=1)
    write_png_atomic(data / "masks" / "img0.png", np.zeros((5, 9), np.uint8))
    assert main(["evaluate", str(data), "--weights", str(micro_checkpoint_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "img0.png: mask is 9x5" in err[-1]


def test_train_then_finetune(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=3)
    assert main(["train", str(data), "--out", str(tmp_path / "a.pt"), *TINY_TRAIN]) == 0
    a = load_checkpoint(tmp_path / "a.pt")
    assert a.metadata["val_images"] and set(a.metadata["val_images"]).isdisjoint(a.metadata["train_images"])
    assert len(a.metadata["log"]) == 1
    rc = main(
        [
            "finetune",
            str(data),
            "--weights",
            str(tmp_path / "a.pt"),
            "--out",
            str(tmp_path / "b.pt"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "2",
            "--patch-size",
            "32",
            "--device",
            "cpu",
        ]
    )
    b = load_checkpoint(tmp_path / "b.pt")
    assert b.metadata["parent"]["sha256"] == a.sha256
    assert a.version == "1" and b.version == "1-finetuned"  # not a second "v1"
    # Fine-tuning keeps a moving average of the weights unless told otherwise; training from scratch does not.
    assert b.metadata["train_config"]["ema_decay"] == 0.99 and a.metadata["train_config"]["ema_decay"] == 0.0
    # A second training stage starts from the first stage's weights and records where it came from.
    assert (
        main(["train", str(data), "--out", str(tmp_path / "c.pt"), "--init", str(tmp_path / "a.pt"), *TINY_TRAIN]) == 0
    )
    c = load_checkpoint(tmp_path / "c.pt")
    assert c.metadata["init"]["sha256"] == a.sha256 and c.model_config == a.model_config
    gate = b.metadata["gate"]
    # Exit status 0 means accepted, 4 asked, 3 rejected: each time the report says which and why, on a line that
    # starts with "gate:" and the verdict.
    assert rc == {"accept": 0, "ask": 4, "reject": 3}[gate["verdict"]]
    assert gate["accepted"] == (gate["verdict"] == "accept")
    out = capsys.readouterr().out
    assert f"gate: {gate['verdict']} (" in out


def test_finetune_reports_drift_on_unreviewed_photos_and_records_the_blend(tmp_path, micro_checkpoint_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=3)
    others = write_synthetic_dataset(tmp_path / "others", n=2, seed=9)
    rc = main(
        [
            "finetune",
            str(data),
            "--weights",
            str(micro_checkpoint_path),
            "--out",
            str(tmp_path / "b.pt"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "4",
            "--patch-size",
            "32",
            "--device",
            "cpu",
            "--unreviewed",
            str(others),
            "--rehearsal-share",
            "0.25",
            "--wise-keep",
            "0.5",
            "--focus-share",
            "0.5",
            "--correction-weight",
            "3",
        ]
    )
    b = load_checkpoint(tmp_path / "b.pt")
    gate = b.metadata["gate"]
    assert rc == {"accept": 0, "ask": 4, "reject": 3}[gate["verdict"]]
    assert gate["evidence"]["drift"] == gate["drift"] and gate["evidence"]["photos"] == 1
    assert b.metadata["train_config"]["wise_keep"] == 0.5 and b.metadata["train_config"]["rehearsal_share"] == 0.25
    assert b.metadata["train_config"]["focus_share"] == 0.5
    assert b.metadata["train_config"]["correction_weight"] == 3.0 and b.metadata["correction_weighting"]["weight"] == 3
    assert gate["drift_source"] == "unreviewed photos" and 0.0 <= gate["drift"] <= 1.0
    assert gate["wise_alpha"] == b.metadata["wise_alpha"]
    assert f"predictions on unreviewed photos change by {gate['drift']:.1%}" in capsys.readouterr().out
    assert (
        main(
            [
                "finetune",
                str(data),
                "--weights",
                str(micro_checkpoint_path),
                "--out",
                str(tmp_path / "c.pt"),
                "--unreviewed",
                str(tmp_path / "nowhere"),
            ]
        )
        == 2
    )
    assert "nowhere: --unreviewed folder not found" in capsys.readouterr().err


def test_finetune_help_names_the_default_that_finetuning_uses(capsys):
    from model_core.finetune import finetune_config

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"(default: {finetune_config().ema_decay:g})" in text


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan", "x"])
def test_a_decay_outside_0_to_1_is_refused_before_any_work(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tmp_path / "no-data"), "--out", str(tmp_path / "a.pt"), "--ema-decay", value])
    assert exc.value.code == 2
    assert f"{value!r} is not a decay between 0 (off) and 1 (exclusive)" in capsys.readouterr().err


def test_resized_renderings_join_training_and_validation(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=5)
    out = tmp_path / "r.pt"
    assert (
        main(["train", str(data), "--out", str(out), *TINY_TRAIN, "--train-resample", "0.5", "--val-resample", "0.5"])
        == 0
    )
    # 5 photos: 4 train, 1 held out; each also rendered at half size.
    assert "8 training and 2 validation images" in capsys.readouterr().err
    meta = load_checkpoint(out).metadata
    assert meta["train_resample"] == [0.5] and meta["val_resample"] == [0.5]
    assert "--train-resample 0.5" in meta["command"]


def test_missing_default_model_says_so(tmp_path, monkeypatch, fundus, capsys):
    monkeypatch.setattr(resources, "resources_dir", lambda: tmp_path)
    write_png_atomic(tmp_path / "a.png", fundus.image)
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert "bundled default model is missing" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "model_core", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "predict" in proc.stdout and "finetune" in proc.stdout


@pytest.mark.slow
def test_two_process_ddp_training_with_gloo(tmp_path):
    data = write_synthetic_dataset(tmp_path / "d", n=4)
    out = tmp_path / "ddp.pt"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "model_core",
        "train",
        str(data),
        "--out",
        str(out),
        *TINY_TRAIN,
        "--epochs",
        "2",
    ]
    # Loopback pinned: gloo otherwise picks the interface the host name resolves to, which a CI box may not route.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    # torchrun's own summary fills the tail of stderr; a rank's error ("terminate called…", a traceback) is earlier.
    rank_errors = [ln for ln in proc.stderr.splitlines() if re.search(r"terminate|what\(\)|Error|error:", ln)]
    assert proc.returncode == 0, "\n".join(rank_errors[:40]) + "\n…\n" + proc.stderr[-1500:]
    ckpt = load_checkpoint(out)
    assert ckpt.metadata["epochs_run"] == 2
    # Only rank 0 reports and writes.
    assert proc.stderr.count("training and") == 1
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".pt"] == ["ddp.pt"]


def test_unwritable_output_and_clashing_names_are_one_line_errors(tmp_path, micro_checkpoint_path, fundus, capsys):
    write_png_atomic(tmp_path / "a" / "x.png", fundus.image)
    (tmp_path / "b").mkdir()
    cv2.imwrite(str(tmp_path / "b" / "x.tif"), fundus.image)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    rc = main(
        [
            "predict",
            str(tmp_path / "a" / "x.png"),
            "--out",
            str(tmp_path / "blocker" / "out"),
            "--weights",
            str(micro_checkpoint_path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    rc = main(
        [
            "predict",
            str(tmp_path / "a" / "x.png"),
            str(tmp_path / "b" / "x.tif"),
            "--out",
            str(tmp_path / "o"),
            "--weights",
            str(micro_checkpoint_path),
        ]
    )
    assert rc == 1 and "x.tif: same name as" in capsys.readouterr().err
    assert (tmp_path / "o" / "x.png").is_file()


def test_predict_never_writes_over_its_input_and_replaces_earlier_outputs_only_when_told(
    tmp_path, micro_checkpoint_path, fundus, capsys
):
    photo = tmp_path / "photos" / "a.png"
    write_png_atomic(photo, fundus.image)
    before = photo.read_bytes()
    # --out is the photos' own folder: a.png's mask would be written over a.png itself.
    rc = main(["predict", str(photo), "--out", str(photo.parent), "--weights", str(micro_checkpoint_path)])
    err = capsys.readouterr().err
    assert rc == 1 and photo.read_bytes() == before and not (photo.parent / "a_prob.png").exists()
    assert f"its mask would replace the input image {photo.parent / 'a.png'}" in err and "Traceback" not in err

    out = tmp_path / "out"
    assert main(["predict", str(photo), "--out", str(out), "--weights", str(micro_checkpoint_path)]) == 0
    (out / "a.png").write_bytes(b"a grader's corrected mask")  # whatever is there now is somebody's work
    rc = main(["predict", str(photo), "--out", str(out), "--weights", str(micro_checkpoint_path)])
    assert rc == 1 and (out / "a.png").read_bytes() == b"a grader's corrected mask"
    assert f"{out / 'a.png'} already exists; pass --overwrite to replace it" in capsys.readouterr().err
    rc = main(["predict", str(photo), "--out", str(out), "--weights", str(micro_checkpoint_path), "--overwrite"])
    assert rc == 0 and read_raw(out / "a.png").shape == fundus.image.shape[:2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "x.png", "--out", "o", "--threshold", "1.5"], "'1.5' is not a threshold between 0 and 1"),
        (["evaluate", "d", "--threshold", "-0.2"], "'-0.2' is not a threshold between 0 and 1"),
    ],
)
def test_a_threshold_outside_0_to_1_is_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_device_this_machine_lacks_is_a_one_line_error_before_any_work(tmp_path, fundus, capsys):
    write_png_atomic(tmp_path / "a.png", fundus.image)
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: device 'gpu' is not one of cpu, cuda, cuda:N, mps"
    assert not (tmp_path / "o").exists()
    if not __import__("torch").cuda.is_available():
        assert main(["evaluate", str(tmp_path), "--device", "cuda"]) == 2
        assert (
            capsys.readouterr().err.strip() == "error: device 'cuda': this machine has no CUDA GPU that PyTorch can use"
        )


def test_finetune_refuses_to_write_over_the_checkpoint_it_starts_from(tmp_path, micro_checkpoint_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=2)
    parent = tmp_path / "parent.pt"
    parent.write_bytes(micro_checkpoint_path.read_bytes())
    rc = main(
        [
            "finetune",
            str(data),
            "--weights",
            str(parent),
            "--out",
            str(tmp_path / "." / "parent.pt"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert rc == 2 and parent.read_bytes() == micro_checkpoint_path.read_bytes()
    assert "is also the checkpoint this finetune starts from; choose another --out" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_an_unwritable_output_is_reported_before_the_work_not_after(tmp_path, micro_checkpoint_path, capsys, command):
    data = write_synthetic_dataset(tmp_path / "d", n=2)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    target = tmp_path / "blocker" / "out.json"
    argv = (
        ["evaluate", str(data), "--weights", str(micro_checkpoint_path), "--json", str(target)]
        if command == "evaluate"
        else ["train", str(data), "--out", str(target), *TINY_TRAIN]
    )
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no metrics table, no training: nothing ran
    assert captured.err.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'blocker'}")
    assert "Traceback" not in captured.err and ".tmp" not in captured.err


def test_evaluate_reads_a_folder_the_app_has_reviewed(tmp_path, micro_checkpoint_path, capsys):
    # The app's flat layout: photos directly in the folder, corrected masks in ground_truth/.
    from model_core.imageio import mask_to_png
    from model_core.synthetic import make_fundus

    for i in range(2):
        f = make_fundus(96, 104, seed=i)
        write_png_atomic(tmp_path / "reviewed" / f"photo{i}.png", f.image)
        write_png_atomic(tmp_path / "reviewed" / "ground_truth" / f"photo{i}.png", mask_to_png(f.vessels))
    rc = main(
        [
            "evaluate",
            str(tmp_path / "reviewed"),
            "--weights",
            str(micro_checkpoint_path),
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["images"] == 2 and set(summary["per_image"]) == {"photo0", "photo1"}


@pytest.mark.parametrize("command", ["train", "finetune"])
@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--epochs", "0", "'0' is not a whole number of at least 1"),
        ("--epochs", "two", "'two' is not a whole number of at least 1"),
        ("--steps-per-epoch", "-3", "'-3' is not a whole number of at least 1"),
        ("--batch-size", "0", "'0' is not a whole number of at least 1"),
        ("--minutes", "-1", "'-1' is not a number of minutes above 0"),
        ("--minutes", "0", "'0' is not a number of minutes above 0"),
    ],
)
def test_training_numbers_out_of_range_are_refused_before_any_work(tmp_path, capsys, command, option, value, message):
    argv = [command, str(tmp_path / "d"), "--out", str(tmp_path / "m.pt"), option, value]
    with pytest.raises(SystemExit) as exc:
        main(argv + (["--weights", str(tmp_path / "w.pt")] if command == "finetune" else []))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}: {message}" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["train", "finetune", "calibrate", "evaluate"])
def test_an_output_that_is_a_folder_is_refused_before_the_work(tmp_path, micro_checkpoint_path, capsys, command):
    data = write_synthetic_dataset(tmp_path / "d", n=2)
    folder = tmp_path / "existing"
    folder.mkdir()
    argv = {
        "train": ["train", str(data), "--out", str(folder), *TINY_TRAIN],
        "finetune": [
            "finetune",
            str(data),
            "--weights",
            str(micro_checkpoint_path),
            "--out",
            str(folder),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--device",
            "cpu",
        ],
        "calibrate": ["calibrate", str(data), "--weights", str(micro_checkpoint_path), "--out", str(folder)],
        "evaluate": ["evaluate", str(data), "--weights", str(micro_checkpoint_path), "--json", str(folder)],
    }[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran
    assert captured.err.strip().splitlines() == [f"error: {folder}: is a folder; name a file to write"]
    assert list(folder.iterdir()) == []


def _finetune_argv(data, weights, out):
    return [
        "finetune",
        str(data),
        "--weights",
        str(weights),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "2",
        "--patch-size",
        "32",
        "--device",
        "cpu",
    ]


@pytest.mark.parametrize(
    "case",
    [
        "train over a photo",
        "finetune over a mask",
        "calibrate over a photo",
        "evaluate json over a photo",
        "evaluate json over its checkpoint",
        "evaluate json over another checkpoint",
    ],
)
def test_an_output_never_replaces_an_input(tmp_path, micro_checkpoint_path, capsys, case):
    data = write_synthetic_dataset(tmp_path / "d", n=2)
    weights = tmp_path / "w.pt"
    weights.write_bytes(micro_checkpoint_path.read_bytes())
    other = tmp_path / "other.pt"
    other.write_bytes(micro_checkpoint_path.read_bytes())
    photo, mask = data / "images" / "img0.png", data / "masks" / "img1.png"
    target, argv = {
        "train over a photo": (photo, ["train", str(data), "--out", str(photo), "--overwrite", *TINY_TRAIN]),
        "finetune over a mask": (mask, [*_finetune_argv(data, weights, mask), "--overwrite"]),
        "calibrate over a photo": (
            photo,
            ["calibrate", str(data), "--weights", str(weights), "--out", str(photo), "--overwrite"],
        ),
        "evaluate json over a photo": (photo, ["evaluate", str(data), "--weights", str(weights), "--json", str(photo)]),
        "evaluate json over its checkpoint": (
            weights,
            ["evaluate", str(data), "--weights", str(weights), "--json", str(weights)],
        ),
        "evaluate json over another checkpoint": (
            other,
            ["evaluate", str(data), "--weights", str(weights), "--json", str(other)],
        ),
    }[case]
    before = target.read_bytes()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert target.read_bytes() == before and captured.out == ""  # untouched, and nothing ran
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"error: {target}: ") and "choose " in line


def test_an_existing_checkpoint_is_replaced_only_with_overwrite(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=3)
    out = tmp_path / "model.pt"
    out.write_bytes(b"a model trained last week")
    assert main(["train", str(data), "--out", str(out), *TINY_TRAIN]) == 2
    assert out.read_bytes() == b"a model trained last week"
    assert capsys.readouterr().err.strip() == (
        f"error: {out}: already exists; pass --overwrite to replace it (the "
        "run would replace it even if it failed), or choose another --out"
    )
    assert main(["train", str(data), "--out", str(out), "--overwrite", *TINY_TRAIN]) == 0
    assert load_checkpoint(out).metadata["val_images"]
    # Outputs inside the data set's folder are fine, and re-running into them too: a report is a report, a
    # model may be replaced when asked.
    for _ in range(2):
        assert main(["evaluate", str(data), "--weights", str(out), "--json", str(data / "m.json")]) == 0
        assert main(["train", str(data), "--out", str(data / "runs" / "m.pt"), "--overwrite", *TINY_TRAIN]) == 0
    assert json.loads((data / "m.json").read_text())["images"] >= 1


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--patch-size", "7", "'7' is not a patch size of at least 32 px, a multiple of 16"),
        ("--patch-size", "40", "'40' is not a patch size of at least 32 px, a multiple of 16"),
        ("--lr", "nan", "'nan' is not a number above 0"),
        ("--lr", "-1", "'-1' is not a number above 0"),
        ("--weight-decay", "nan", "'nan' is not a number of at least 0"),
        ("--alpha", "-1", "'-1' is not a number of at least 0"),
        ("--val-fraction", "1", "'1' is not a share between 0 and 1 (exclusive)"),
        ("--seed", "-1", "'-1' is not a whole number of at least 0"),
        ("--threshold", "2", "'2' is not a threshold between 0 and 1"),
        ("--fov-diameter", "nan", "'nan' is not 0 (off) or a diameter of 8 to 20000 px"),
        ("--fov-diameter", "5", "'5' is not 0 (off) or a diameter of 8 to 20000 px"),
        ("--patience", "-1", "'-1' is not a whole number of at least 1"),
    ],
)
def test_training_options_out_of_range_are_one_line_errors(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tmp_path / "d"), "--out", str(tmp_path / "m.pt"), option, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}: {message}" in err and "Traceback" not in err


def test_calibrate_refuses_a_resize_no_camera_makes(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", str(tmp_path), "--weights", "w.pt", "--out", "o.pt", "--resize", "40000x40000"])
    assert "'40000x40000' is not a size like 512x512 (8 to 12000 px a side)" in capsys.readouterr().err


def test_evaluate_refuses_an_empty_fov_mask(tmp_path, micro_checkpoint_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=1)
    write_png_atomic(tmp_path / "fov" / "img0.png", np.zeros((96, 104), np.uint8))
    assert main(["evaluate", str(data), "--weights", str(micro_checkpoint_path), "--fov", str(tmp_path / "fov")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'fov' / 'img0.png'}: FOV mask is empty (no pixel inside the field of view)"
    )


def test_small_input_mistakes_are_one_line_each(tmp_path, micro_checkpoint_path, fundus, capsys):
    write_png_atomic(tmp_path / "in" / "a.png", fundus.image)
    write_png_atomic(tmp_path / "in" / "b.png", fundus.image)
    a_file = tmp_path / "in" / "a.png"
    assert main(["predict", str(a_file), "--out", str(a_file), "--weights", str(micro_checkpoint_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {a_file}: is a file, not a folder; --out names the folder the masks go to"
    )
    (tmp_path / "out" / "a.png").mkdir(parents=True)  # a folder in the way of one image's output
    rc = main(
        [
            "predict",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--overwrite",
            "--weights",
            str(micro_checkpoint_path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and (tmp_path / "out" / "b.png").is_file()  # the other image is still predicted
    assert f"a folder is in the way of its output {tmp_path / 'out' / 'a.png'}; skipped" in err
    data = write_synthetic_dataset(tmp_path / "d", n=1)
    assert main(["evaluate", str(data), "--weights", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path}: is a folder, not a checkpoint file")
    assert main(["evaluate", str(data), "--weights", str(micro_checkpoint_path), "--split", "nope"]) == 2
    assert "--split 'nope' is not one of train, training, test, val, validation" in capsys.readouterr().err


def test_a_float_image_with_a_nan_pixel_reads_without_warnings(tmp_path):
    import warnings

    from model_core.imageio import read_image

    img = np.full((16, 16), 0.5, np.float32)
    img[3, 4] = np.nan
    cv2.imwrite(str(tmp_path / "f.tif"), img)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = read_image(tmp_path / "f.tif")
    assert rgb[3, 4, 0] == 0 and rgb[0, 0, 0] == 128


@pytest.mark.parametrize("value", ["0", "-2", "nan", "x"])
def test_a_correction_weight_that_is_not_above_0_is_refused_before_any_work(tmp_path, capsys, value):
    argv = ["finetune", str(tmp_path / "d"), "--out", str(tmp_path / "m.pt"), "--weights", str(tmp_path / "w.pt")]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--correction-weight", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument --correction-weight: '{value}' is not a number above 0" in err
