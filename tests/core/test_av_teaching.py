"""Teach artery/vein on a workspace (core.vessels.av_teaching): the saved labels of some photos teach the
suggestion of the others; the gate's verdict decides whether it is used; the grader's answer is recorded."""

from __future__ import annotations

import numpy as np
import pytest
from engine.test_av_net import STEPS, inverted_photo

from model_core.av_net import AVNet, save_av_net
from model_core.imageio import write_png_atomic
from retina_desktop.core.vessels import av_teaching
from retina_desktop.core.vessels.calibre_review import prepare
from retina_desktop.core.workspace import Workspace


def _workspace(tmp_path, labelled: int, unlabelled: int = 1, unsaved_mask: int = 0):
    """Photos of drawn vessels whose arteries are the darker ones (the automatic rule gets them wrong)."""
    truth = {}
    for i in range(labelled + unlabelled + unsaved_mask):
        photo, mask, av = inverted_photo(i)
        write_png_atomic(tmp_path / f"{i:02d}.png", photo)
        truth[f"{i:02d}"] = (photo, mask, av)
    ws = Workspace(tmp_path)
    for i, e in enumerate(ws.entries):
        _photo, mask, av = truth[e.key]
        if i < labelled:
            ws.save_ground_truth(e, mask.astype(np.uint8) * 255)
        if i < labelled or i >= labelled + unlabelled:
            ws.calibre.save_labels(e.key, av)
    return ws, truth


def _accuracy(labels, av):
    return float(np.mean(labels[av > 0] == av[av > 0]))


def test_one_held_out_photo_asks_and_the_grader_s_yes_puts_it_in_use(tmp_path):
    ws, truth = _workspace(tmp_path, labelled=2, unsaved_mask=1)
    saved = {p: p.read_bytes() for p in tmp_path.rglob("*.png")}  # masks, labels and their history
    photos, skipped = av_teaching.labelled_photos(ws)
    assert [p.name for p in photos] == ["00", "01"]
    assert skipped == ["03.png: its vessel mask is not saved, so its labels cannot teach"]
    outcome = av_teaching.teach_workspace(ws, STEPS)
    assert outcome.taught.verdict == "ask" and not outcome.active
    assert outcome.path == av_teaching.candidate_path(ws) and outcome.path.is_file()  # kept, unused
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.png")} == saved  # teaching wrote no ground truth
    assert av_teaching.active_model(ws) is None and not av_teaching.activate(ws)  # nothing accepted to turn on
    assert not av_teaching.adopt_candidate(ws, AVNet({k: v + 1 for k, v in outcome.taught.model.state_dict.items()}))
    assert "not in use until you say so" in outcome.message() and "judged on 1 held-out photo" in outcome.message()
    assert av_teaching.adopt_candidate(ws) and av_teaching.active_model(ws) is not None
    assert not av_teaching.candidate_path(ws).exists()
    # The unlabelled photo is suggested by the taught network: right where the automatic rule is wrong.
    photo, mask, av = truth["02"]
    automatic = prepare(photo, mask, None)
    taught = prepare(photo, mask, None, suggest=av_teaching.labels_with(av_teaching.active_model(ws)))
    assert _accuracy(automatic.labels, av) < 0.2 and not automatic.taught
    assert _accuracy(taught.labels, av) > 0.95 and taught.taught and taught.suggested
    # Saved labels win over any suggestion.
    assert prepare(photo, mask, None, labels=av, suggest=lambda *_a: np.zeros_like(av)).labels is av
    av_teaching.deactivate(ws)
    assert av_teaching.active_model(ws) is None


def test_enough_held_out_photos_with_a_clear_gain_put_it_in_use_by_itself(tmp_path):
    ws, _truth = _workspace(tmp_path, labelled=8, unlabelled=0)
    outcome = av_teaching.teach_workspace(ws, STEPS)
    t = outcome.taught
    assert t.verdict == "accept" and outcome.active, t.reason
    assert t.model.metadata["judged_on"] == ["06", "07"] and len(t.model.metadata["taught_on"]) == 6
    assert t.evidence is not None and t.evidence.gain_low > 0
    in_use = av_teaching.active_model(ws)
    assert in_use is not None and "is in use" in outcome.message()
    # Taught again for one step: better than the automatic suggestion, but judged against the one in use it is
    # worse, so it waits beside it and never displaces it.
    again = av_teaching.teach_workspace(ws, 1)
    assert again.taught.verdict == "reject" and again.path == av_teaching.candidate_path(ws)
    assert again.taught.reason.startswith("worse: ") and "against the taught suggestion in use" in again.taught.reason
    still = av_teaching.active_model(ws)
    assert still is not None and all((still.state_dict[k] == v).all() for k, v in in_use.state_dict.items())


def test_a_network_replaced_behind_the_app_is_not_used_under_the_old_answer(tmp_path):
    ws, _truth = _workspace(tmp_path, labelled=2, unlabelled=0)
    av_teaching.teach_workspace(ws, 2)
    assert av_teaching.adopt_candidate(ws) and av_teaching.activate(ws)
    kept = av_teaching.saved_model(ws)
    assert kept is not None
    other = AVNet({k: v + 0.01 if v.is_floating_point() else v for k, v in kept.state_dict.items()})
    save_av_net(av_teaching.model_path(ws), other)  # another window taught again
    assert av_teaching.active_model(ws) is None
    av_teaching.model_path(ws).write_bytes(b"garbage")  # damaged: derived data, the automatic suggestion instead
    assert av_teaching.saved_model(ws) is None and av_teaching.active_model(ws) is None
    assert not av_teaching.activate(ws)


def test_too_few_labelled_photos_is_one_line_and_writes_nothing(tmp_path):
    ws, _truth = _workspace(tmp_path, labelled=1)
    with pytest.raises(ValueError, match=r"at least 2 photos first \(1 labelled\)"):
        av_teaching.teach_workspace(ws, STEPS)
    assert not av_teaching.model_path(ws).exists()


def test_the_workspace_command_teaches_and_use_answers_the_ask(tmp_path, capsys):
    from retina_desktop.core.workspace_cli import main

    ws, _truth = _workspace(tmp_path / "one", labelled=1)
    ws.close()
    assert main(["teach-av", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'one'}: label arteries and veins on at least 2 photos first (1 labelled): "
                   "one teaches, one judges"]  # fmt: skip
    ws, _truth = _workspace(tmp_path / "two", labelled=2, unlabelled=0)
    ws.close()
    assert main(["teach-av", str(tmp_path / "two"), "--steps", str(STEPS), "--use"]) == 0
    out, err = capsys.readouterr()
    assert "is in use (--use; fewer than 2 held-out photos: judged on 1 held-out photo" in out
    assert f"step {STEPS} of {STEPS}" in err
    ws = Workspace(tmp_path / "two")
    assert av_teaching.active_model(ws) is not None
    ws.close()
