from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.sources import detect_modality, load_image_folder, load_table, load_unlabelled_inputs
from components.errors import DataError


def test_detect_modality(tmp_path: Path, table_file: Path, image_folder: Path):
    assert detect_modality(table_file) == "tabular"
    assert detect_modality(image_folder) == "image"
    with pytest.raises(DataError, match="does not exist"):
        detect_modality(tmp_path / "missing.csv")
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match="expected a .csv table"):
        detect_modality(other)


def test_load_table_keeps_numeric_features_and_reports_dropped_rows(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("id,x,y,label\na,1,2,cat\nb,3,,dog\nc,5,6,\nd,7,8,cat\n")
    dataset = load_table(path, "label")
    assert dataset.feature_names == ["x", "y"]
    assert dataset.features.shape == (3, 2)
    assert np.isnan(dataset.features[1, 1])
    assert list(dataset.target) == ["cat", "dog", "cat"]
    assert any("dropped 1 rows" in warning for warning in dataset.warnings)
    assert any("ignored non-numeric columns: id" in warning for warning in dataset.warnings)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"x,label\n", "has a header but no rows"),
        (b"\xff\xfe\x00\x81garbage\x00\xd9\x10", "not a readable CSV"),
        (b"x,other\n1,2\n", "target column 'label' is not in"),
        (b"name,label\nfoo,a\nbar,b\n", "no numeric feature columns"),
        (b"x,label\n1,\n2,\n", "has no values"),
    ],
)
def test_load_table_errors(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_table(path, "label")


def test_load_image_folder_unifies_sizes_and_colour(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.new("L", (10, 10), 10).save(tmp_path / "a" / "1.png")
    Image.new("L", (10, 10), 20).save(tmp_path / "a" / "2.png")
    Image.new("RGB", (20, 16), (255, 0, 0)).save(tmp_path / "b" / "3.jpg")
    dataset = load_image_folder(tmp_path)
    assert dataset.features.shape == (3, 3, 10, 10)
    assert dataset.features.dtype == np.uint8
    assert list(dataset.target) == ["a", "a", "b"]
    assert dataset.features[2, 0].mean() > 200 and dataset.features[2, 2].mean() < 30


def test_load_image_folder_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "broken.png").write_text("not an image")
    with pytest.raises(DataError, match="broken.png cannot be read"):
        load_image_folder(tmp_path)


def test_load_unlabelled_inputs(tmp_path: Path, image_folder: Path):
    table = tmp_path / "new.csv"
    table.write_text("b,a,extra\n1,2,3\n")
    assert load_unlabelled_inputs(table, "tabular", ["a", "b"], ()).tolist() == [[2.0, 1.0]]
    with pytest.raises(DataError, match="lacks the feature columns"):
        load_unlabelled_inputs(table, "tabular", ["a", "zzz"], ())
    images = load_unlabelled_inputs(image_folder, "image", [], (1, 4, 4))
    assert images.shape == (60, 1, 4, 4)
