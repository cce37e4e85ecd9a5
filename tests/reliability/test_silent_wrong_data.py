"""Data that used to be taken wrongly without a word (issue case 20): 16-bit images clipped to white,
a column named twice renamed "a.1", thousands of whole-number labels taken for regression silently,
a class folder that cannot be read left out."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from components.config import load_params
from components.data.formulation import formulate_task
from components.data.sources import load_dataset
from tests.conftest import PROJECT, make_workspace, run_cli, write_images


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path):
    ramp = (np.arange(16 * 16).reshape(16, 16) * 250).astype(np.uint16)  # 0 to 63,750
    for label, pixels in (("dark", ramp // 4), ("bright", ramp)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    dataset = load_dataset(tmp_path / "images", "image", None, 64)
    bright = dataset.features[list(dataset.target).index("bright"), 0].astype(float)
    assert (bright == 255).mean() < 0.01  # PIL's own conversion made 99% of these pixels 255
    assert np.corrcoef(bright.ravel(), ramp.ravel())[0, 1] > 0.999
    dark = dataset.features[list(dataset.target).index("dark"), 0].astype(float)
    assert 60 < dark.max() < 66  # a quarter of the range stays a quarter


def test_a_column_named_twice_is_refused(tmp_path: Path, monkeypatch):
    table = tmp_path / "twice.csv"
    table.write_text("x,y,x,label\n" + "".join(f"{i},{i % 3},{-i},{'ab'[i % 2]}\n" for i in range(40)))
    root = make_workspace(tmp_path / "workspace", "data/digits")
    code, stderr = run_cli(root, monkeypatch, "run", "--data", str(table))
    assert code == 2 and "names 1 column(s) more than once: x;" in stderr, stderr
    assert not (root / "data").exists()


def test_thousands_of_whole_number_labels_say_how_to_make_them_classes(tmp_path: Path):
    table = tmp_path / "ids.csv"
    table.write_text("x,label\n" + "".join(f"{i / 7:.3f},{i}\n" for i in range(2000)))
    params = load_params(make_workspace(tmp_path / "workspace", "data/ids.csv") / "params.yaml")
    formulation = formulate_task(load_dataset(table, "tabular", "label", 64), params.task_formulation)
    assert formulation.task_type == "regression"
    assert "2,000 distinct whole numbers" in formulation.reasons[0] and "--task-type classification" in formulation.reasons[0]


def test_a_class_folder_that_cannot_be_read_is_named_not_left_out():
    """Permissions as a user meets them: root reads anything, so the loader then runs as nobody."""
    folder = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        folder.chmod(0o755)
        write_images(folder / "images", per_class=4, classes=3)
        (folder / "images" / "class_2").chmod(0)
        unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        code = f"from components.data.sources import load_dataset; load_dataset('{folder / 'images'}', 'image', None, 64)"
        done = subprocess.run([*unprivileged, sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    finally:
        (folder / "images" / "class_2").chmod(0o755)
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode != 0 and last.startswith("components.errors.DataError: cannot read the folder"), done.stderr
    assert f"{folder / 'images' / 'class_2'} (Permission denied)" in last
