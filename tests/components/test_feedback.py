"""Labelled production data: ids fix the split, repeated feedback is not added twice, inputs of
another model are left out, unknown classes are dropped and reported."""

from pathlib import Path

import numpy as np

from components.data.feedback import FeedbackSet, feedback_splits, labelled_requests, split_of


def record(request_id: str, inputs: np.ndarray, labels: dict[int, str]) -> dict:
    return {"request_id": request_id, "inputs": inputs, "labels": labels}


def test_split_is_fixed_by_the_id_and_follows_the_shares():
    ids = [f"feedback/{index}/0" for index in range(4000)]
    splits = [split_of(sample_id, 0.25, 0.15) for sample_id in ids]
    assert splits == [split_of(sample_id, 0.25, 0.15) for sample_id in ids]
    shares = {name: splits.count(name) / len(ids) for name in ("train", "validation", "test")}
    assert abs(shares["test"] - 0.25) < 0.03 and abs(shares["validation"] - 0.15) < 0.03


def test_labelled_rows_are_collected_once_and_saved(tmp_path: Path):
    images = np.arange(3 * 4, dtype=np.uint8).reshape(3, 1, 2, 2)
    records = [
        record("a", images[:2], {0: "cat", 1: "dog"}),
        record("b", images[2:], {0: "cat"}),
        record("c", np.zeros((1, 1, 3, 3), dtype=np.uint8), {0: "dog"}),  # served by a model of other data
    ]
    inputs, labels, ids = labelled_requests(records, [1, 2, 2], np.uint8)
    assert (
        inputs.shape == (3, 1, 2, 2)
        and labels == ["cat", "dog", "cat"]
        and ids == ["feedback/a/0", "feedback/a/1", "feedback/b/0"]
    )
    feedback = FeedbackSet.empty().extended("data/images", inputs, labels, ids)
    again = feedback.extended("data/images", inputs, labels, ids)
    assert len(again) == 3
    feedback.save(tmp_path / "feedback.npz")
    loaded = FeedbackSet.load(tmp_path / "feedback.npz")
    assert loaded.dataset == "data/images" and np.array_equal(loaded.inputs, inputs) and loaded.labels.tolist() == labels
    assert not list(tmp_path.glob(".*"))  # no staging file left


def test_unknown_classes_are_dropped_and_every_sample_lands_in_one_split():
    count = 200
    feedback = FeedbackSet(
        "data/table.csv",
        np.arange(count * 2, dtype=np.float32).reshape(count, 2),
        np.array(["yes", "no"] * (count // 2 - 1) + ["maybe", "perhaps"]),
        np.array([f"feedback/{index}/0" for index in range(count)]),
    )
    parts, dropped = feedback_splits(feedback, "classification", ["no", "yes"], 0.25, 0.15)
    assert sorted(dropped) == ["maybe", "perhaps"]
    ids = np.concatenate([parts[split][2] for split in ("train", "validation", "test")])
    assert len(ids) == count - 2 and len(set(ids)) == count - 2
    assert 20 < len(parts["test"][2]) < 80
    for split in ("train", "validation", "test"):
        inputs, targets, split_ids = parts[split]
        rows = [int(sample_id.split("/")[1]) for sample_id in split_ids]
        assert np.array_equal(inputs, feedback.inputs[rows])
        assert [("no", "yes")[target] for target in targets] == feedback.labels[rows].tolist()
