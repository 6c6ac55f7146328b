"""The demo workspace: the same images whether a child process or this one makes them."""

from __future__ import annotations

import sys

from retina_desktop.core import demo


def _pixels(folder):
    from model_core.imageio import read_image

    return {p.name: read_image(p).tobytes() for p in sorted(folder.glob("synthetic_*.png"))}


def test_a_child_process_makes_the_same_demo_images_and_reports_progress(tmp_path, monkeypatch):
    steps = []
    here = demo.ensure_demo_workspace(tmp_path / "here", count=2, size=(120, 110))

    def not_here(*args):
        raise AssertionError("made in this process")

    monkeypatch.setattr(demo, "make_demo_image", not_here)  # the child process is not patched
    child = demo.ensure_demo_workspace(
        tmp_path / "child",
        count=2,
        size=(120, 110),
        progress=lambda d, t, s: steps.append((d, s)),
        separate_process=True,
    )
    assert _pixels(here) == _pixels(child) and len(_pixels(child)) == 2
    assert (0, "synthetic_01.png") in steps and steps[-1] == (2, "done")


def test_without_a_child_process_the_images_are_made_here(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    folder = demo.ensure_demo_workspace(tmp_path / "demo", count=2, size=(120, 110), separate_process=True)
    assert sorted(_pixels(folder)) == ["synthetic_01.png", "synthetic_02.png"]
