"""Symbolic links in an image folder (issue case 19): a link back to a parent made the copy into data/
endless (1.2 GB in two minutes). Links to folders, links that leave the folder and dangling links are
refused before anything is copied; links to files inside the folder are kept."""

import os
from pathlib import Path

import pytest

from tests.conftest import make_workspace, run_cli, write_images


def _linked(tmp_path: Path, case: str) -> Path:
    images = write_images(tmp_path / "images", per_class=12, classes=2)
    first = sorted((images / "class_0").iterdir())[0]
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(first.read_bytes())
    links = {
        "loop": (images / "class_0" / "again", images),
        "folder": (images / "class_1" / "copy", images / "class_0"),
        "outside": (images / "class_1" / "stranger.png", outside),
        "dangling": (images / "class_1" / "gone.png", tmp_path / "nothing.png"),
        "file inside": (images / "class_1" / "twin.png", first),
    }
    link, target = links[case]
    os.symlink(target, link)
    return images


@pytest.mark.parametrize(
    "case, message",
    [
        ("loop", "class_0/again (a link to a folder, which loops)"),
        ("folder", "class_1/copy (a link to a folder)"),
        ("outside", "class_1/stranger.png (leaves the folder for"),
        ("dangling", "class_1/gone.png (points nowhere)"),
    ],
)
def test_links_that_cannot_be_copied_safely_are_refused(tmp_path: Path, case: str, message: str, monkeypatch):
    images = _linked(tmp_path, case)
    root = make_workspace(tmp_path / "workspace", "data/digits")
    code, stderr = run_cli(root, monkeypatch, "run", "--data", str(images))
    assert code == 2 and message in stderr and "symbolic link" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and not (root / "data").exists()


def test_a_link_to_a_file_inside_the_folder_is_kept(tmp_path: Path):
    from components.config import load_params
    from components.data.sources import load_dataset
    from components.data.validation import validate_dataset

    images = _linked(tmp_path, "file inside")
    params = load_params(make_workspace(tmp_path / "workspace", "data/images") / "params.yaml")
    assert validate_dataset(images, params.task_formulation, params.data_preparation).class_names == ["class_0", "class_1"]
    assert len(load_dataset(images, "image", "label", params.data_preparation.max_image_size)) == 25  # 2 x 12 and the link
