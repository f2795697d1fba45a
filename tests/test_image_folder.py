"""Image folders (adanat_env.image_folder): the layouts, streamed decoding to the model's size and channels,
corrupt files skipped and counted, class checks, and open_dataset choosing IDX or folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adanat_env.data import DataError, IDXDataset, fit_images, open_dataset
from adanat_env.image_folder import ImageFolderDataset, decode_image

from .test_data import _make_set


def _img(path: Path, h: int, w: int, value: int = 100, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(path)


def test_class_subfolders_sorted_classes_and_val_as_test(tmp_path):
    for split in ("train", "val"):
        for c in ("b_dog", "a_cat"):
            _img(tmp_path / split / c / "0.png", 20, 30)
    train = open_dataset("train", tmp_path, resolution=8, channels=3, workers=0)
    assert isinstance(train, ImageFolderDataset) and train.classes == ("a_cat", "b_dog")
    x, y = train.load()
    assert x.shape == (2, 3, 8, 8) and x.dtype.is_floating_point is False and y.tolist() == [0, 1]
    assert open_dataset("test", tmp_path, resolution=8, workers=0).split == "test"  # val/ serves the test split


def test_file_lists_and_a_bare_class_tree(tmp_path):
    _img(tmp_path / "imgs" / "a.png", 10, 10, mode="L")
    _img(tmp_path / "imgs" / "b.jpg", 12, 9)
    (tmp_path / "train.txt").write_text("# path label\nimgs/a.png 0\nimgs/b.jpg 2\n")
    (tmp_path / "test.txt").write_text("imgs/b.jpg 1\n")
    ds = open_dataset("train", tmp_path, resolution=6, channels=1, workers=0)
    assert ds.num_classes == 3 and ds.load()[0].shape == (2, 1, 6, 6)
    assert open_dataset("test", tmp_path, resolution=6, workers=0).labels.tolist() == [1]
    (tmp_path / "bad.txt").write_text("imgs/a.png cat\n")
    bare = tmp_path / "bare"
    _img(bare / "x" / "0.png", 9, 9)
    assert open_dataset("train", bare, resolution=4, workers=0).classes == ("x",)
    with pytest.raises(DataError, match="train split only"):
        open_dataset("test", bare, resolution=4, workers=0)


def test_corrupt_files_are_skipped_and_counted_in_worker_processes(tmp_path, capfd):
    for i in range(6):
        _img(tmp_path / "train" / "c" / f"{i}.png", 16, 16, value=10 * i)
    (tmp_path / "train" / "c" / "z_truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    ds = ImageFolderDataset.scan(tmp_path, "train", resolution=4, workers=2)
    x, y = ds.load()
    assert len(ds) == 7 and x.shape[0] == 6 and len(ds.skipped) == 1
    assert [int(v) for v in x[:, 0, 0, 0]] == [0, 10, 20, 30, 40, 50]  # order kept
    assert "skipped 1 unreadable image file(s) of 7" in capfd.readouterr().err
    (tmp_path / "train" / "c" / "0.png").write_bytes(b"broken")
    for f in (tmp_path / "train" / "c").glob("[1-5].png"):
        f.write_bytes(b"broken")
    with pytest.raises(DataError, match="could be read"):
        ImageFolderDataset.scan(tmp_path, "train", resolution=4, workers=0).load()


def test_resize_and_centre_crop(tmp_path):
    img = np.zeros((10, 30, 3), dtype=np.uint8)
    img[:, 10:20] = 255  # the centre third is white
    Image.fromarray(img).save(tmp_path / "wide.png")
    x = decode_image(tmp_path / "wide.png", 10)
    assert x.shape == (3, 10, 10) and x.min() > 200  # the short side fits, the centre is kept


def test_missing_layouts_and_mismatches_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset("train", tmp_path / "nowhere")
    (tmp_path / "train" / "a").mkdir(parents=True)
    _img(tmp_path / "train" / "a" / "0.png", 8, 8)
    with pytest.raises(DataError, match="test/ or val/"):
        open_dataset("test", tmp_path, resolution=4)
    (tmp_path / "idx").mkdir()
    _make_set(tmp_path / "idx")
    idx = open_dataset("train", tmp_path / "idx")
    assert isinstance(idx, IDXDataset)
    with pytest.raises(ValueError, match="larger than the model's resolution 16"):
        idx.load(None, 16)
    with pytest.raises(ValueError, match="1-channel images but the model expects 3"):
        fit_images(idx.images[:2], 28, 3)
    with pytest.raises(ValueError, match="outside the model's 3 classes"):
        idx.check_classes(3)
