"""``retina-desktop --self-test`` (and ``--measure-startup``) from the source install, in a subprocess,
and the one resource resolver for source, frozen and overridden layouts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_core import resources

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("model file", "resources", "window", "model", "predict", "paint", "save", "export", "child process", "close")


def _run(*args: str, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop(resources.ENV_OVERRIDE, None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "retina_desktop", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_passed(proc: subprocess.CompletedProcess) -> list[str]:
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = [line for line in lines if line.startswith("[ok] ")]
    assert [line[5:].split(":", 1)[0] for line in ok] == list(STEPS), proc.stdout
    assert not any(line.startswith("[FAIL]") for line in lines)
    assert lines[-1].startswith(f"self-test passed: {len(STEPS)} steps in ")
    return lines


def test_self_test_passes_with_explicit_weights(micro_checkpoint_path):
    lines = _assert_passed(_run("--self-test", "--weights", str(micro_checkpoint_path)))
    text = "\n".join(lines)
    assert f"[ok] model file: {micro_checkpoint_path}" in text
    assert "[ok] model: test-micro v0 on CPU" in text
    assert "[ok] window: shown " in text and "(Qt platform offscreen)" in text
    assert "[ok] export: 1 mask(s) written to " in text
    # Everything went into a temporary folder that is gone afterwards.
    tmp = Path(lines[0].rsplit(" in ", 1)[1])
    assert tmp.name.startswith("retina-desktop-self-test-") and not tmp.exists()


def test_self_test_fails_in_one_line_without_the_default_model(tmp_path):
    proc = _run("--self-test", env_extra={resources.ENV_OVERRIDE: str(tmp_path)}, timeout=300)
    assert proc.returncode == 1
    fails = [line for line in proc.stdout.splitlines() if line.startswith("[FAIL]")]
    assert len(fails) == 1 and fails[0].startswith("[FAIL] model file: ")
    assert "default model is missing" in fails[0] and "--weights" in fails[0]


def test_self_test_fails_for_a_missing_weights_file(tmp_path):
    proc = _run("--self-test", "--weights", str(tmp_path / "nope.pt"), timeout=300)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == f"[FAIL] model file: {tmp_path / 'nope.pt'}: no such file (--weights)"


@pytest.mark.slow
@pytest.mark.skipif(
    not (ROOT / "resources" / resources.DEFAULT_MODEL_NAME).is_file(),
    reason="resources/default_model.pt is not in this checkout yet",
)
def test_self_test_with_the_bundled_default_model():
    lines = _assert_passed(_run("--self-test"))
    assert any(line.startswith(f"[ok] model file: {ROOT / 'resources'}") for line in lines)


def test_measure_startup_reports_launch_to_window(micro_checkpoint_path):
    proc = _run("--measure-startup", "--weights", str(micro_checkpoint_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    shown = float(lines[0].split("window shown ")[1].split(" s")[0])
    first = float(lines[1].split("first prediction shown ")[1].split(" s")[0])
    assert 0 < shown <= first < 600


# -- the one resolver ----------------------------------------------------------------------------------------
def test_resources_resolve_from_source(monkeypatch):
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.resource_path("icons/retina-desktop.svg").is_file()
    assert resources.resource_path("style.qss").is_file()


def test_resources_resolve_inside_a_frozen_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / resources.DEFAULT_MODEL_NAME).write_bytes(b"x")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"
    assert resources.default_model_path() == tmp_path / "resources" / resources.DEFAULT_MODEL_NAME


def test_gui_icon_and_stylesheet_go_through_the_resolver(qapp, monkeypatch, tmp_path):
    from retina_desktop.ui.app.appearance import ICON_SIZES, app_icon, icon_files, stylesheet

    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    assert len(icon_files()) == len(ICON_SIZES) + 1
    assert not app_icon().isNull() and 512 in [s.width() for s in app_icon().availableSizes()]
    assert "first_run_guide" in stylesheet()
    monkeypatch.setenv(resources.ENV_OVERRIDE, str(tmp_path))  # an empty resources folder
    assert icon_files() == [] and app_icon().isNull() and stylesheet() == ""
