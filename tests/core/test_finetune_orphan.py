"""The fine-tune child ends when the app that started it is killed (it must not train on and add a version)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PARENT = textwrap.dedent("""
    import multiprocessing as mp, sys
    from model_core.imageio import mask_to_png, write_png_atomic
    from model_core.synthetic import make_fundus
    from retina_desktop.core.model.finetune_job import Done, Failed, FinetuneJob, Step, child_main

    if __name__ == "__main__":
        tmp, parent = sys.argv[1], sys.argv[2]
        f = make_fundus(96, 96, seed=7)
        samples = [(str(write_png_atomic(f"{tmp}/a.png", f.image)), str(write_png_atomic(f"{tmp}/a_gt.png",
                   mask_to_png(f.vessels))))]
        job = FinetuneJob(parent, None, samples, f"{tmp}/store", overrides={"epochs": 100000, "steps_per_epoch": 2,
                          "batch_size": 1, "patch_size": 32, "device": "cpu"})
        ctx = mp.get_context("spawn")
        q, ev = ctx.Queue(), ctx.Event()
        p = ctx.Process(target=child_main, args=(job.as_dict(), q, ev), daemon=True)
        p.start()
        print(p.pid, flush=True)
        while True:
            msg = q.get()
            if isinstance(msg, Step):
                print("training", flush=True)
                break
            if isinstance(msg, (Done, Failed)):
                print(msg, flush=True)
                break
        sys.stdin.readline()
""")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie waits for a reaper but runs no more


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to see the orphan")
def test_the_training_child_exits_when_the_app_is_killed(tmp_path, micro_checkpoint_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")
    app = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path), str(micro_checkpoint_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    child = None
    try:
        child = int(app.stdout.readline())
        assert app.stdout.readline().strip() == b"training"
        assert not _gone(child)
        app.send_signal(signal.SIGKILL)
        app.wait()
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling a real condition, with a deadline
        assert _gone(child), "the fine-tune child outlived the app"
        assert not list((tmp_path / "store").glob("v*"))  # and added no version
    finally:
        for pid in (app.pid, child):
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        app.stdout.close()
        app.stdin.close()
