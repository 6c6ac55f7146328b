import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_core.data import PatchSampler, PreparedImage, augmentation, discover, find_mask, image_folders, prepare
from model_core.errors import DatasetError, ImageReadError
from model_core.imageio import mask_to_png, write_png_atomic
from model_core.preprocess import PreprocessConfig
from model_core.synthetic import make_fundus

from .conftest import write_synthetic_dataset


def test_pairs_by_stem_in_both_mask_folder_names(tmp_path):
    for name in ("masks", "mask"):
        root = write_synthetic_dataset(tmp_path / name, n=2, mask_dir=name)
        samples = discover(root)
        assert [s.name for s in samples] == ["img0", "img1"]
        assert all(s.mask.parent.name == name and s.mask.stem == s.image.stem for s in samples)


def test_train_and_test_subfolders(tmp_path):
    write_synthetic_dataset(tmp_path / "d" / "train", n=2)
    write_synthetic_dataset(tmp_path / "d" / "test", n=1, seed=9)
    assert len(discover(tmp_path / "d", split="train")) == 2
    assert len(discover(tmp_path / "d", split="test")) == 1
    with pytest.raises(DatasetError, match="no images/ folder"):
        discover(tmp_path / "d")


def test_unpaired_image_and_orphan_mask_name_the_file(tmp_path):
    root = write_synthetic_dataset(tmp_path / "d", n=2)
    (root / "masks" / "img1.png").rename(root / "masks" / "other.png")
    with pytest.raises(DatasetError) as err:
        discover(root)
    assert "img1.png" in str(err.value) and "has no mask" in str(err.value)
    (root / "images" / "img1.png").unlink()
    with pytest.raises(DatasetError, match=r"other\.png.*mask without an image"):
        discover(root)


def test_mask_size_mismatch_and_unreadable_image(tmp_path):
    root = write_synthetic_dataset(tmp_path / "d", n=2)
    write_png_atomic(root / "masks" / "img0.png", np.zeros((10, 10), np.uint8))
    samples = discover(root)
    with pytest.raises(DatasetError, match=r"img0.png: mask is 10x10 but its image img0.png is 104x96"):
        prepare(samples[0], PreprocessConfig())
    (root / "images" / "img1.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=re.escape("img1.png")):
        prepare(samples[1], PreprocessConfig())


def test_prepare_rescales_to_the_trained_fov_diameter(synthetic_dataset):
    s = discover(synthetic_dataset)[0]
    native = prepare(s, PreprocessConfig(fov_diameter=None))
    doubled = prepare(s, PreprocessConfig(fov_diameter=2 * 89))  # the synthetic FOV is ~89 px wide
    assert native.scale == 1.0 and native.x.shape == (96, 104)
    assert doubled.scale == pytest.approx(2.0, rel=0.05)
    assert doubled.x.shape[0] == round(96 * doubled.scale)
    assert doubled.vessels.shape == doubled.x.shape == doubled.fov.shape


def test_augmentation_keeps_one_pixel_vessels():
    line = np.zeros((64, 64), np.uint8)
    cv2.line(line, (5, 10), (58, 50), 1, 1)
    x = (np.full((64, 64), 0.6) - 0.3 * line).astype(np.float32)
    aug = augmentation(seed=0)
    kept = []
    for _ in range(30):
        out = aug(image=x, masks=[line, np.ones_like(line)])
        kept.append(out["masks"][0].sum() / line.sum())
        assert set(np.unique(out["masks"][0])) <= {0, 1}
    # Nearest-neighbour rotations/scalings may drop a few pixels, never the vessel.
    assert min(kept) > 0.6 and np.median(kept) > 0.85


def test_patch_sampler_shapes_and_reproducibility(synthetic_dataset):
    imgs = [prepare(s, PreprocessConfig(fov_diameter=None)) for s in discover(synthetic_dataset)]
    a = PatchSampler(imgs, 32, seed=4).batch(5)
    b = PatchSampler(imgs, 32, seed=4).batch(5)
    assert a[0].shape == (5, 1, 32, 32) and a[1].shape == a[2].shape == (5, 1, 32, 32)
    for u, v in zip(a, b, strict=False):
        assert np.array_equal(u, v)


def test_drive_fov_discs_are_not_taken_for_vessel_masks(tmp_path):
    # DRIVE as distributed: mask/<stem>_mask.gif is the field of view; the vessels are elsewhere.
    root = write_synthetic_dataset(tmp_path / "d", n=1, mask_dir="mask")
    (root / "mask" / "img0.png").rename(root / "mask" / "img0_mask.png")
    with pytest.raises(DatasetError, match=re.escape("img0.png: has no mask")):
        discover(root)


def test_resampled_rendering_matches_a_linearly_resized_and_halved_mask(synthetic_dataset):
    s = discover(synthetic_dataset)[0]
    native = prepare(s, PreprocessConfig(fov_diameter=None))
    half = prepare(s, PreprocessConfig(fov_diameter=None), resample=0.5)
    assert half.name == f"{s.name}@0.5" and half.x.shape == (48, 52)
    # The mask is what public resized data sets ship: linear resize of the 0/1 truth, cut at one half.
    expected = cv2.resize(native.vessels.astype(np.float32), (52, 48), interpolation=cv2.INTER_LINEAR) >= 0.5
    assert np.array_equal(half.vessels > 0, expected)
    assert 0 < half.vessels.sum() < native.vessels.sum()


def test_softened_patches_keep_their_mask_and_lose_fine_detail(synthetic_dataset):
    imgs = [prepare(s, PreprocessConfig(fov_diameter=None)) for s in discover(synthetic_dataset)]

    # One patch per sampler, so both draw the same centre before the softened one draws its factor.
    def first(**kw):
        return [PatchSampler(imgs, 32, seed=k, augment=False, **kw).batch(1) for k in range(6)]

    plain = [np.concatenate(a) for a in zip(*first(), strict=False)]
    soft = [np.concatenate(a) for a in zip(*first(resample_p=1.0, resample_range=(0.5, 0.5)), strict=False)]
    # Same patches, same truth; only the image is smoother.
    assert np.array_equal(plain[1], soft[1]) and np.array_equal(plain[2], soft[2])

    def detail(a):
        return np.abs(np.diff(a, axis=-1)).mean()

    assert detail(soft[0]) < 0.9 * detail(plain[0])
    assert soft[0].mean() == pytest.approx(plain[0].mean(), abs=0.01)


def _drive_as_distributed(root, stems=("21", "22")):
    """DRIVE's own layout: training/images/21_training.tif, vessels in 1st_manual/21_manual1.gif, FOV discs in
    mask/21_training_mask.gif (GIF written as PNG bytes would not read: the suffix decides nothing here)."""
    for i, n in enumerate(stems):
        f = make_fundus(96, 104, seed=i)
        write_png_atomic(root / "training" / "images" / f"{n}_training.png", f.image)
        write_png_atomic(root / "training" / "1st_manual" / f"{n}_manual1.png", mask_to_png(f.vessels))
        write_png_atomic(root / "training" / "mask" / f"{n}_training_mask.png", mask_to_png(f.fov))
    return root


def test_drive_as_distributed_pairs_manual1_masks_and_mask_folder_fov_discs(tmp_path):
    root = _drive_as_distributed(tmp_path / "DRIVE")
    samples = discover(root, split="train")  # "train" also finds DRIVE's "training"
    assert [(s.image.name, s.mask.name, s.fov.name) for s in samples] == [
        ("21_training.png", "21_manual1.png", "21_training_mask.png"),
        ("22_training.png", "22_manual1.png", "22_training_mask.png"),
    ]
    (folder,) = image_folders(root)
    assert folder.masks == root / "training" / "1st_manual" and folder.split == "training"


def test_flat_folder_reviewed_by_the_app(tmp_path):
    for i in range(3):
        write_png_atomic(tmp_path / "w" / f"img_{i}.png", make_fundus(96, 104, seed=i).image)
    with pytest.raises(DatasetError, match="no images/ folder and no ground_truth/ folder"):
        discover(tmp_path / "w")
    for i in (0, 2):  # img_1 not reviewed yet
        write_png_atomic(
            tmp_path / "w" / "ground_truth" / f"img_{i}.png", mask_to_png(make_fundus(96, 104, seed=i).vessels)
        )
    samples = discover(tmp_path / "w", split="test")
    assert [(s.image.name, s.mask.relative_to(tmp_path).as_posix()) for s in samples] == [
        ("img_0.png", "w/ground_truth/img_0.png"),
        ("img_2.png", "w/ground_truth/img_2.png"),
    ]
    (folder,) = image_folders(tmp_path / "w")
    assert folder.layout == "flat" and folder.masks == tmp_path / "w" / "ground_truth"


def test_find_mask_tries_the_same_stems_as_discover(tmp_path):
    write_png_atomic(tmp_path / "m" / "21_manual1.png", np.zeros((8, 8), np.uint8))
    write_png_atomic(tmp_path / "m" / "img.tif", np.zeros((8, 8), np.uint8))
    assert find_mask(tmp_path / "m", "21_training") == tmp_path / "m" / "21_manual1.png"
    assert find_mask(tmp_path / "m", "img") == tmp_path / "m" / "img.tif"
    assert find_mask(tmp_path / "m", "22_training") is None and find_mask(tmp_path / "m", "im") is None


@pytest.mark.parametrize(
    "name, train, test, fov", [("drive", 20, 20, True), ("stare", 10, 10, False), ("retina-kaggle", 80, 20, False)]
)
def test_the_shared_data_sets_as_they_are_laid_out(name, train, test, fov):
    root = Path("/work/shared/data") / name
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    for split, n in (("train", train), ("test", test)):
        samples = discover(root, split=split)
        assert len(samples) == n
        assert all(s.mask.parent == root / split / "masks" and s.mask.stem == s.image.stem for s in samples)
        assert all((s.fov is not None) == fov for s in samples)


def test_a_suffixed_mask_belongs_to_the_photo_of_that_exact_name_first(tmp_path):
    for stem in ("a", "a_gt"):
        write_png_atomic(tmp_path / "d" / "images" / f"{stem}.png", make_fundus(96, 104, seed=1).image)
    write_png_atomic(tmp_path / "d" / "masks" / "a_gt.png", np.zeros((96, 104), np.uint8))
    assert [(s.name, s.mask and s.mask.name) for s in discover(tmp_path / "d", require_masks=False)] == [
        ("a", None),
        ("a_gt", "a_gt.png"),
    ]
    write_png_atomic(tmp_path / "d" / "masks" / "a_vessels.png", np.zeros((96, 104), np.uint8))
    assert [s.mask.name for s in discover(tmp_path / "d")] == ["a_vessels.png", "a_gt.png"]


def _marked_image(size=200, at=(50, 60), fov=None):
    """An image that is 1 at one pixel only, so a patch's centre value says whether it was centred there."""
    x = np.zeros((size, size), np.float32)
    x[at] = 1.0
    fov = np.ones((size, size), np.uint8) if fov is None else fov.astype(np.uint8)
    return PreparedImage("a", x, np.zeros((size, size), np.uint8), fov, 1.0)


def test_focused_patches_are_centred_on_the_focus_pixels_at_the_asked_share():
    im = _marked_image()
    focus = np.zeros((200, 200), bool)
    focus[50, 60] = True
    x, _, _ = PatchSampler([im], 32, augment=False, focus=[focus], focus_p=1.0).batch(16)
    assert (x[:, 0, 16, 16] == 1.0).all()
    x, _, _ = PatchSampler([im], 32, seed=1, augment=False, focus=[focus], focus_p=0.5).batch(400)
    share = (x[:, 0, 16, 16] == 1.0).mean()
    assert 0.4 < share < 0.6  # binomial(400, 0.5): 0.4-0.6 is beyond 4 standard deviations


def test_focus_pixels_outside_the_fov_are_not_patch_centres():
    fov = np.zeros((200, 200), bool)
    fov[100:, :] = True  # the marked pixel (50, 60) lies outside
    im = _marked_image(fov=fov)
    focus = np.zeros((200, 200), bool)
    focus[50, 60] = True
    x, _, _ = PatchSampler([im], 32, augment=False, focus=[focus], focus_p=1.0).batch(50)
    assert (x[:, 0, 16, 16] == 0.0).all()  # centred in the FOV, as without focus
    with pytest.raises(ValueError, match="one focus mask per image"):
        PatchSampler([im], 32, focus=[focus[:100]], focus_p=1.0)


def test_sampling_without_focus_draws_the_same_random_stream_as_before_focus_existed():
    # The stream before focus: per patch, the image index, then the centre, from one generator.
    im = _marked_image()
    rng = np.random.default_rng(3)
    centres = np.argwhere(im.fov > 0)
    half = 16
    padded = cv2.copyMakeBorder(im.x, half, half, half, half, cv2.BORDER_REFLECT_101)
    expected = []
    for _ in range(6):
        rng.integers(1)
        cy, cx = centres[rng.integers(len(centres))]
        expected.append(padded[cy : cy + 32, cx : cx + 32])
    focus = np.zeros((200, 200), bool)
    focus[50, 60] = True
    for kw in ({}, {"focus": [focus], "focus_p": 0.0}):
        x, _, _ = PatchSampler([im], 32, seed=3, augment=False, **kw).batch(6)
        assert np.array_equal(x[:, 0], np.stack(expected))


def test_weight_maps_travel_with_their_patches_through_augmentation(synthetic_dataset):
    imgs = [prepare(s, PreprocessConfig()) for s in discover(synthetic_dataset)[:2]]
    # A weight that is 5 on vessels and 1 elsewhere: after flips, rotations and affine warps the patch's
    # weights must still be 5 exactly where its vessel mask is.
    weights = [np.where(im.vessels > 0, 5.0, 1.0).astype(np.float32) for im in imgs]
    x, y, v, w = PatchSampler(imgs, 32, seed=2, weights=weights).weighted_batch(24)
    assert w.shape == y.shape == x.shape and w.dtype == np.float32
    assert np.array_equal(w, np.where(y > 0, 5.0, 1.0)) and (y > 0).any()
    # The same draws as without weights: patches, masks and valid masks do not change.
    x0, y0, v0 = PatchSampler(imgs, 32, seed=2).batch(24)
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(v, v0)
    # Without weights every pixel weighs 1.
    assert (PatchSampler(imgs, 32, seed=2).weighted_batch(3)[3] == 1.0).all()
    with pytest.raises(ValueError, match="one weight map per image"):
        PatchSampler(imgs, 32, weights=weights[:1])
