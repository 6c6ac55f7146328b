"""The fine-tune child process's entry point, run in-process: what the app's runs are made of."""

import dataclasses
import queue
import threading

import torch

from model_core.checkpoint import load_checkpoint, save_checkpoint
from model_core.imageio import mask_to_png, write_png_atomic
from model_core.model_store import ModelStore
from model_core.synthetic import make_fundus
from retina_desktop.core.model.finetune_job import (
    Done,
    Failed,
    FinetuneJob,
    Started,
    Step,
    child_main,
    failure_of,
    kept_model_words,
    unreviewed_photos,
)


class ChildQueue(queue.Queue):
    """The multiprocessing queue's interface, in one process."""

    def close(self):
        pass

    def join_thread(self):
        pass


def _run_child(job: FinetuneJob) -> list:
    """child_main in this process, then undo what a real child's exit would: its thread count and watcher."""
    threads = torch.get_num_threads()
    q, cancel = ChildQueue(), threading.Event()
    try:
        child_main(job.as_dict(), q, cancel)
    finally:
        cancel.set()  # ends the cancel-watch thread
        torch.set_num_threads(threads)
    return _messages(q)


def _messages(q: queue.Queue) -> list:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_a_run_from_the_app_keeps_the_parents_loss(tmp_path, micro_checkpoint_path):
    micro = load_checkpoint(micro_checkpoint_path)
    trained = {"alpha": 0.5, "beta": 0.5, "gamma": 1.0, "bce_weight": 0.25}
    parent = save_checkpoint(
        tmp_path / "parent.pt", dataclasses.replace(micro, metadata={**micro.metadata, "train_config": trained})
    )
    samples = []
    for i in range(2):
        f = make_fundus(96, 96, seed=60 + i)
        samples.append(
            (
                str(write_png_atomic(tmp_path / f"img{i}.png", f.image)),
                str(write_png_atomic(tmp_path / f"img{i}_gt.png", mask_to_png(f.vessels))),
            )
        )
    job = FinetuneJob(
        str(parent),
        None,
        samples,
        str(tmp_path / "store"),
        overrides={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 32, "device": "cpu"},
    )
    messages = _run_child(job)
    assert isinstance(messages[0], Started) and isinstance(messages[-1], Done)
    assert sum(isinstance(m, Step) for m in messages) == 2
    settings = ModelStore(tmp_path / "store").get(messages[-1].outcome["version"]).info["settings"]
    assert (settings["alpha"], settings["beta"], settings["gamma"], settings["bce_weight"]) == (0.5, 0.5, 1.0, 0.25)


def test_a_missing_parent_is_one_error_message(tmp_path):
    job = FinetuneJob(str(tmp_path / "gone.pt"), None, [], str(tmp_path / "store"))
    (message,) = _run_child(job)  # no "started": the run never began
    assert isinstance(message, Failed) and "gone.pt" in message.message and "\n" not in message.message
    assert message.kind == "error" and "Traceback" in message.traceback


def test_failures_are_classified_by_the_exception_type():
    assert failure_of(MemoryError(), "CPU").kind == "out_of_memory"
    assert failure_of(torch.OutOfMemoryError("CUDA out of memory"), "GPU: X").kind == "out_of_memory"
    assert "ran out of memory on GPU: X" in failure_of(torch.OutOfMemoryError("x"), "GPU: X").message
    assert failure_of(FileNotFoundError(2, "gone", "/a/b.png")).message == "a file is missing: /a/b.png"
    # A message that merely mentions memory is not an out-of-memory error.
    assert failure_of(ValueError("the memory of the model")).kind == "error"


def test_the_run_measures_drift_on_the_workspaces_unreviewed_photos(tmp_path, micro_checkpoint_path):
    from retina_desktop.core.workspace import Workspace

    root = tmp_path / "ws"
    for i in range(5):
        write_png_atomic(root / f"p{i}.png", make_fundus(96, 96, seed=80 + i).image)
    ws = Workspace(root)
    corrected = []
    for e in ws.entries[:2]:  # two approved corrections, one edited photo; the other two nobody touched
        ws.save_ground_truth(e, make_fundus(96, 96, seed=80 + ws.entries.index(e)).vessels, status="approved")
        corrected.append((str(e.path), str(e.existing_gt())))
    ws.save_ground_truth(ws.entries[2], make_fundus(96, 96, seed=82).vessels, status="edited")
    others = unreviewed_photos(ws)
    assert others == [str(e.path) for e in ws.entries[3:]]
    assert unreviewed_photos(ws, limit=1) == [str(ws.entries[3].path)]
    ws.close()
    job = FinetuneJob(
        str(micro_checkpoint_path),
        None,
        corrected,
        str(tmp_path / "store"),
        overrides={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 32, "device": "cpu"},
        unreviewed=others,
    )
    done = _run_child(job)[-1]
    assert isinstance(done, Done)
    out = done.outcome
    assert out["drift_source"] == "unreviewed photos" and out["drift_images"] == 2 and 0.0 <= out["drift"] <= 1.0
    info = ModelStore(tmp_path / "store").get(out["version"]).info
    assert info["metrics"]["drift"] == out["drift"] and info["wise"]["alpha"] == out["alpha"]


def test_the_kept_model_is_described_in_a_graders_words():
    words = kept_model_words({"alpha": 0.6, "drift": 0.034, "drift_source": "unreviewed photos"})
    assert words[0].startswith("a 60% / 40% blend of the fine-tuned and the previous model")
    assert words[1] == "changes predictions on other photos in this workspace by 3.4%"
    assert kept_model_words({"alpha": 1.0, "drift": 0.1, "drift_source": "synthetic photos"}) == [
        "changes predictions on synthetic test photos by 10.0%"
    ]
    assert kept_model_words({}) == []
