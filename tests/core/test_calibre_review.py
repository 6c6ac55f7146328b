"""The calibre review's core (core.vessels.calibre_review) and its records (core.workspace.calibre_records):
a click labels the vessel through its branches but not past a crossing, one undo restores, the disc and the
labels are saved with every version kept."""

import numpy as np

from model_core.calibre import ARTERY, VEIN, Disc
from model_core.imageio import write_png_atomic
from retina_desktop.core.vessels.calibre_review import CalibreReview, VesselGeometry, compute
from retina_desktop.core.workspace import Workspace


def _tree_and_crossing() -> np.ndarray:
    """A Y (stem from the bottom, two branches up) on the left; a plus (two vessels crossing) on the right."""
    m = np.zeros((120, 200), bool)
    m[60:118, 38:43] = True  # stem, columns 38-42
    for i in range(40):  # two diagonal branches from the stem's top
        m[60 - i : 63 - i, 38 - i : 43 - i] = True
        m[60 - i : 63 - i, 38 + i : 43 + i] = True
    m[58:63, 110:190] = True  # horizontal vessel of the plus
    m[20:100, 148:153] = True  # vertical vessel crossing it
    return m


def test_a_click_labels_the_branches_of_a_tree_stops_at_a_crossing_and_one_undo_restores():
    mask = _tree_and_crossing()
    geometry = VesselGeometry.of(mask)
    review = CalibreReview("a", Disc(10, 10, 8), np.zeros(mask.shape, np.uint8))
    assert review.mark(geometry, 40, 100, ARTERY) > 0  # on the stem
    labelled = review.labels == ARTERY
    assert labelled[:, :100][mask[:, :100]].mean() > 0.97  # the stem and both branches
    assert not labelled[:, 100:].any()
    # The plus: a click on its left arm labels that arm, not the other three (a crossing stops the label).
    assert review.mark(geometry, 120, 60, VEIN) > 0
    vein = review.labels == VEIN
    assert vein[60, 112] and not vein[60, 185] and not vein[25, 150] and not vein[95, 150]
    assert review.mark(geometry, 120, 60, VEIN) == 0  # already so: no undo step
    assert review.mark(geometry, 5, 5, VEIN) == 0  # no vessel there
    assert review.undo() and not (review.labels == VEIN).any() and (review.labels == ARTERY).any()
    assert review.undo() and not review.labels.any() and not review.undo()


def test_no_disc_and_a_wrong_sized_label_image_give_a_reason_never_a_number():
    mask = _tree_and_crossing()
    assert compute(mask, np.zeros(mask.shape, np.uint8), None).reason == "no optic disc found"
    bad = compute(mask, np.zeros((5, 5), np.uint8), Disc(100, 60, 30))
    assert bad.crae is None and "differ in size" in bad.reason
    few = compute(mask, np.zeros(mask.shape, np.uint8), Disc(100, 60, 30))
    assert few.crae is None and few.reason == "0 arterioles in zone B, 6 needed; 0 venules in zone B, 6 needed"


def test_records_keep_every_version_and_reload(tmp_path):
    write_png_atomic(tmp_path / "01.png", np.zeros((4, 5, 3), np.uint8))
    records = Workspace(tmp_path).calibre
    key = "train/images/01"  # a key with folders: nested under calibre/
    assert records.load_disc(key) is None and records.load_labels(key, (4, 5)) is None
    records.save_disc(key, Disc(10.5, 20.0, 30.0))
    labels = np.zeros((4, 5), np.uint8)
    labels[1, 2], labels[3, 4] = ARTERY, VEIN
    records.save_labels(key, labels)
    assert [p.name for p in records.history(key)] == ["av-0001.png", "disc-0001.json"]  # kept before it is on disk
    records.save_disc(key, Disc(11.0, 20.0, 30.0))
    records.save_disc(key, Disc(11.0, 20.0, 30.0))  # the same bytes: nothing kept, nothing written
    labels2 = labels.copy()
    labels2[0, 0] = VEIN
    records.save_labels(key, labels2)
    records.save_disc(key, Disc(12.0, 20.0, 30.0))
    folder = tmp_path / ".retina" / "calibre" / key
    names = ["av-0001.png", "av-0002.png", "disc-0001.json", "disc-0002.json", "disc-0003.json"]
    assert [p.name for p in records.history(key)] == names
    assert [v.path.name for v in records.versions(key)] == [names[i] for i in (2, 0, 3, 1, 4)]
    assert '"x": 10.5' in (folder / "history" / "disc-0001.json").read_text()
    assert records.load_disc(key) == Disc(12.0, 20.0, 30.0)
    assert np.array_equal(records.load_labels(key, (4, 5)), labels2)
    assert records.load_labels(key, (5, 5)) is None  # another image size: not this image's labels
    again = Workspace(tmp_path).calibre
    assert again.load_disc(key) == Disc(12.0, 20.0, 30.0) and len(again.versions(key)) == 5
