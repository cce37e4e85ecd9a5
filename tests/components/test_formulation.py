import numpy as np
import pytest

from components.config import TaskFormulationParams
from components.data.dataset import RawDataset
from components.data.formulation import class_labels, formulate_task, infer_task_type
from components.errors import DataError


def dataset(target) -> RawDataset:
    target = np.asarray(target, dtype=object)
    return RawDataset("tabular", np.zeros((len(target), 1), np.float32), target, ["x"], [str(i) for i in range(len(target))])


@pytest.mark.parametrize(
    "target, expected",
    [
        (["a", "b", "a"], "classification"),
        ([0, 1, 2, 1, 0], "classification"),
        ([0.5, 1.25, 3.0, 2.2], "regression"),
        (list(range(100)), "regression"),
    ],
)
def test_infer_task_type(target, expected):
    assert infer_task_type(np.asarray(target, dtype=object))[0] == expected


def test_class_labels_sort_numbers_numerically():
    assert class_labels(np.asarray([10, 2, 1, 2], dtype=object)) == ["1", "2", "10"]


def test_formulation_defaults_and_threshold():
    formulation = formulate_task(dataset(["a"] * 6 + ["b"] * 4), TaskFormulationParams())
    assert formulation.task_type == "classification"
    assert formulation.metric == "accuracy"
    assert formulation.class_names == ["a", "b"]
    assert formulation.success_threshold == pytest.approx(0.8)


def test_overrides_win():
    params = TaskFormulationParams(task_type="regression", success_threshold=0.9)
    formulation = formulate_task(dataset([1, 2, 3, 4]), params)
    assert (formulation.task_type, formulation.metric, formulation.success_threshold) == ("regression", "r2", 0.9)


def test_single_class_is_rejected():
    with pytest.raises(DataError, match="single class"):
        formulate_task(dataset(["only"] * 5), TaskFormulationParams())


def test_text_target_cannot_be_regression():
    with pytest.raises(DataError, match="not numeric"):
        formulate_task(dataset(["a", "b"]), TaskFormulationParams(task_type="regression"))


def test_metric_must_fit_task():
    with pytest.raises(DataError, match="does not fit"):
        formulate_task(dataset(["a", "b"]), TaskFormulationParams(metric="r2"))
