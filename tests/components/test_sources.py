from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.images import load_image_folder
from components.data.sources import detect_modality, load_unlabelled_inputs
from components.data.tables import load_table
from components.errors import DataError


def test_detect_modality(tmp_path: Path, table_file: Path, image_folder: Path):
    assert detect_modality(table_file) == "tabular"
    assert detect_modality(image_folder) == "image"
    with pytest.raises(DataError, match="does not exist"):
        detect_modality(tmp_path / "missing.csv")
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match=r"expected a table \(.csv, .parquet\)"):
        detect_modality(other)


def test_load_table_keeps_numeric_features_and_reports_dropped_rows(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("id,colour,x,y,label\na,red,1,2,cat\nb,red,3,,dog\nc,blue,5,6,\nd,blue,7,8,cat\n")
    dataset = load_table(path, "label")
    assert dataset.feature_names == ["x", "y", "colour"]  # text with few values: a categorical column
    assert dataset.categories == {"colour": ["blue", "red"]}
    assert dataset.features.shape == (3, 3)
    assert np.isnan(dataset.features[1, 1])
    assert list(dataset.target) == ["cat", "dog", "cat"]
    assert any("dropped 1 rows" in warning for warning in dataset.warnings)
    assert any("ignored id-like columns" in warning and ": id" in warning for warning in dataset.warnings)
    assert dataset.sample_ids == ["a", "b", "d"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"x,label\n", "has a header but no rows"),
        (b"\xff\xfe\x00\x81garbage\x00\xd9\x10", "not a readable CSV"),
        (b"x,other\n1,2\n", "target column 'label' is not in"),
        (("id,label\n" + "".join(f"r{i},{'ab'[i % 2]}\n" for i in range(25))).encode(), "no feature columns besides"),
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
    with pytest.raises(DataError, match="no image under .* can be read: image .*a/broken.png cannot be read"):
        load_image_folder(tmp_path)


def test_unreadable_images_and_corrupt_rows_are_skipped_and_reported(tmp_path: Path):
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (4, 4), index * 10).save(tmp_path / "images" / label / f"{index}.png")
    (tmp_path / "images" / "a" / "broken.png").write_bytes(b"\x89PNG truncated")
    dataset = load_image_folder(tmp_path / "images")
    assert len(dataset) == 6 and "a/broken.png" not in dataset.sample_ids and list(dataset.target).count("a") == 3
    assert dataset.warnings == ["skipped 1 unreadable image file(s) (corrupt or not an image): a/broken.png"]

    path = tmp_path / "table.csv"
    path.write_text("x,y,label\n1,2,a\n3,4,b\n5,6,7,a\n7,8,b\n9,10\n11,12,a\n")
    table = load_table(path, "label")
    assert table.features.tolist() == [[1, 2], [3, 4], [7, 8], [11, 12]]  # a row too long is skipped; one too short has no label
    assert "skipped 1 corrupt row(s) of table.csv with more fields than the header (lines 4)" in table.warnings
    assert "dropped 1 rows whose target 'label' is missing" in table.warnings


def test_load_unlabelled_inputs(tmp_path: Path, image_folder: Path):
    table = tmp_path / "new.csv"
    table.write_text("b,a,extra\n1,2,3\n")
    assert load_unlabelled_inputs(table, "tabular", ["a", "b"], ()).tolist() == [[2.0, 1.0]]
    with pytest.raises(DataError, match="lacks the feature columns"):
        load_unlabelled_inputs(table, "tabular", ["a", "zzz"], ())
    images = load_unlabelled_inputs(image_folder, "image", [], (1, 4, 4))
    assert images.shape == (60, 1, 4, 4)


def test_parquet_tables_id_columns_and_official_splits(tmp_path: Path):
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = 40
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{index:03d}" for index in range(rows)],
            "row": np.arange(rows) + 1,
            "price_cents": rng.permutation(rows) * 137 + 5,  # unique integers, but a measurement
            "x": rng.normal(size=rows),
            "split": ["train"] * 28 + ["Validation"] * 4 + ["test"] * 8,
            "label": ["yes", "no"] * (rows // 2),
        }
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    dataset = load_table(path, "label")
    assert dataset.feature_names == ["price_cents", "x"]
    assert dataset.sample_ids[:2] == ["c000", "c001"]  # the id column names the samples
    assert any("customer_id, row" in warning for warning in dataset.warnings)
    assert list(dataset.official_splits[[0, 28, 39]]) == ["train", "validation", "test"]
    assert detect_modality(path) == "tabular"

    frame["split"] = ["train"] * 36 + ["holdout"] * 4
    frame.to_parquet(path)
    with pytest.raises(DataError, match="holds 'holdout': use train, validation or test"):
        load_table(path, "label")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_table(tmp_path / "broken.parquet", "label")


def test_a_folder_with_a_table_of_image_paths(tmp_path: Path):
    from components.data.sources import load_dataset

    folder = tmp_path / "scans"
    (folder / "img").mkdir(parents=True)
    rows = ["file,diagnosis,age"]
    for index in range(6):
        Image.fromarray(np.full((6, 8), index * 40, dtype=np.uint8)).save(folder / "img" / f"{index}.png")
        rows.append(f"img/{index}.png,{'ill' if index % 2 else 'well'},{30 + index}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    assert detect_modality(folder, "diagnosis") == "multimodal"  # the age column is a feature too
    dataset = load_dataset(folder, "image", "diagnosis")  # images only, when asked
    assert dataset.features.shape == (6, 1, 6, 8) and list(dataset.target[:2]) == ["well", "ill"]
    assert dataset.sample_ids[0] == "img/0.png" and any("ignored the table's other columns (age)" in w for w in dataset.warnings)
    both = load_dataset(folder, "multimodal", "diagnosis")
    assert both.feature_names == ["age", "file"] and both.image_shape == (1, 6, 8)
    assert both.features.shape == (6, 1 + 48) and both.features[1, 0] == 31 and both.features[1, 1] == 40
    (folder / "labels.csv").write_text("\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n")
    assert detect_modality(folder, "diagnosis") == "image"  # paths and labels alone
    with pytest.raises(DataError, match="lists images and labels but no other feature columns: set the modality to image"):
        load_dataset(folder, "multimodal", "diagnosis")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    assert detect_modality(folder, "diagnosis", group_column="age") == "image"  # a group column is no feature
    with pytest.raises(DataError, match=r"lists images in column 'file': pass the folder"):
        load_table(folder / "labels.csv", "diagnosis")
    (folder / "img" / "9.png").write_text("not an image")
    (folder / "labels.csv").write_text("\n".join([*rows[:3], "img/9.png,ill,39", *rows[3:]]) + "\n")
    skipped = load_dataset(folder, "multimodal", "diagnosis")  # the unreadable image's row is left out
    assert skipped.sample_ids == both.sample_ids and np.array_equal(skipped.features, both.features)
    assert any("skipped 1 unreadable image file(s) (corrupt or not an image): img/9.png" in w for w in skipped.warnings)
    (folder / "labels.csv").write_text("\n".join([*rows, "img/missing.png,ill,40"]) + "\n")
    with pytest.raises(DataError, match="1 images listed in labels.csv do not exist, e.g. img/missing.png"):
        load_dataset(folder, "image", "diagnosis")


def test_image_tables_honour_split_and_group_columns(tmp_path: Path):
    from components.data.sources import load_dataset

    folder = tmp_path / "scans"
    (folder / "img").mkdir(parents=True)
    rows = ["file,patient,split,diagnosis"]
    for index in range(8):
        Image.fromarray(np.full((4, 4), index * 30, dtype=np.uint8)).save(folder / "img" / f"{index}.png")
        rows.append(f"img/{index}.png,p{index // 2},{'test' if index >= 6 else 'train'},{'ill' if index % 2 else 'well'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    assert detect_modality(folder, "diagnosis", "split", "patient") == "image"  # neither column is a feature
    dataset = load_dataset(folder, "image", "diagnosis", split_column="split", group_column="patient")
    assert list(dataset.official_splits) == ["train"] * 6 + ["test"] * 2
    assert list(dataset.groups) == ["p0", "p0", "p1", "p1", "p2", "p2", "p3", "p3"]
    assert not any("ignored the table's other columns" in warning for warning in dataset.warnings)


def test_a_dataset_is_read_once_per_process_until_its_file_changes(tmp_path: Path):
    """The command line's check, the task formulation and the data preparation of one run load the
    same data: the second load hands out the first one's arrays (read-only, so no reader changes
    another's), a changed file is read again, and a copy made known to the loader is not read."""
    import shutil

    from components.data.dataset import source_signature
    from components.data.sources import keep_loaded, load_dataset
    from tests.conftest import write_table

    path = write_table(tmp_path / "table.csv", rows=60)
    first = load_dataset(path, "tabular", "label")
    again = load_dataset(path, "tabular", "label")
    assert np.shares_memory(first.features, again.features) and again.sample_ids == first.sample_ids
    with pytest.raises(ValueError, match="read-only"):
        again.features[0, 0] = 1.0
    again.warnings.append("a reader's own note")
    assert "a reader's own note" not in load_dataset(path, "tabular", "label").warnings

    copy = tmp_path / "workspace" / "table.csv"
    copy.parent.mkdir()
    signature = source_signature(path)
    shutil.copy2(path, copy)
    keep_loaded(signature, copy)
    assert np.shares_memory(load_dataset(copy, "tabular", "label").features, first.features)

    with copy.open("a") as stream:
        stream.write(path.read_text().splitlines()[1] + "\n")  # one more row
    grown = load_dataset(copy, "tabular", "label")
    assert len(grown) == len(first) + 1 and not np.shares_memory(grown.features, first.features)
