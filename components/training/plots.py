"""Plots people would rather look at than read: learning curves and search progress."""

from __future__ import annotations

from pathlib import Path

from components import plotting
from components.search.records import TrialRecord


def plot_learning_curve(history: list[dict[str, float]], path: Path, title: str) -> Path:
    """Training and validation loss, and the validation score, per epoch."""
    pyplot = plotting.pyplot()
    figure, (losses, scores) = pyplot.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history) + 1)
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        losses.plot(epochs, [row.get(key, float("nan")) for row in history], label=label)
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.legend()
    scores.plot(epochs, [row.get("val_score", float("nan")) for row in history], color="tab:green")
    scores.set_xlabel("epoch")
    scores.set_ylabel("validation score")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)


def plot_search(trials: list[TrialRecord], path: Path) -> Path:
    """Each trial's validation score in order, with the best so far."""
    pyplot = plotting.pyplot()
    scored = [trial for trial in trials if trial.score is not None]
    figure, axis = pyplot.subplots(figsize=(6, 4))
    if scored:
        order = [trial.sequence + 1 for trial in scored]
        values = [trial.score for trial in scored]
        best = [max(values[: index + 1]) for index in range(len(values))]
        axis.scatter(order, values, label="trial")
        axis.step(order, best, where="post", color="tab:red", label="best so far")
        axis.legend()
    axis.set_xlabel("trial")
    axis.set_ylabel("validation score")
    axis.set_title("Architecture search")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)


def plot_confusion_matrix(targets, predicted, class_names: list[str], path: Path) -> Path:
    """Test-split confusion matrix, counts with rows normalised to colour (scikit-learn's display)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    pyplot = plotting.pyplot()
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axis = pyplot.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        targets, predicted, labels=list(range(len(class_names))), display_labels=class_names, ax=axis, colorbar=False
    )
    axis.set_title("Test split: true class (rows) against predicted")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)


def write_final_reports(
    history: list[dict[str, float]], outputs, targets, class_names: list[str] | None, folder: Path, title: str
):
    """The final training's learning curve (PNG, and CSV for ``dvc plots``) and, for a classifier's test
    outputs, the per-class report and the confusion matrix; returns the files written and the weakest
    class's row (None for a regression)."""
    import pandas as pd

    from components.training.fit import class_report

    plot_learning_curve(history, folder / "learning_curve.png", title)
    curve = pd.DataFrame(history)
    curve.insert(0, "epoch", range(1, len(curve) + 1))
    curve.to_csv(folder / "learning_curve.csv", index=False)
    written = ["learning_curve.csv", "learning_curve.png"]
    if class_names is None:
        return written, None
    report = class_report(outputs, targets, class_names)
    report.to_csv(folder / "class_report.csv", index=False, float_format="%.4f")
    plot_confusion_matrix(targets, outputs.argmax(axis=1), class_names, folder / "confusion_matrix.png")
    return [*written, "class_report.csv", "confusion_matrix.png"], report.sort_values("f1").iloc[0]
