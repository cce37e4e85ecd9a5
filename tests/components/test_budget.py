"""The training budget holds: fitting stops at its deadline with its best epoch, trials stop at their
cap with a score, and the search ends at its deadline."""

import time
from pathlib import Path

import numpy as np
import pytest

from components.models.families import build_network
from components.search.budget import Budget, EpochLines, duration
from components.training.fit import fit_network
from tests.components.test_search import GOOD, request, search_setup


def test_budget_splits_the_stage_between_search_and_final_training():
    budget = Budget(total_seconds=240, final_share=0.3, started=1000.0)
    assert budget.search_deadline == pytest.approx(1000 + 168)
    assert budget.deadline == 1240 and budget.final_deadline == pytest.approx(1235)
    assert budget.trial_seconds(concurrency=2) == pytest.approx(112)  # three rounds of two trials in 168 s
    assert budget.trial_seconds(concurrency=2, cap_minutes=0.5) == 30
    assert Budget(total_seconds=30).trial_seconds(concurrency=1) == 20  # never below a trial's minimum
    assert "search 2m48s (each trial at most 1m52s)" in budget.describe(2)
    assert duration(75) == "1m15s" and duration(8.2) == "8s"


def test_epoch_lines_report_epoch_score_and_time_left():
    lines: list[str] = []
    report = EpochLines(lines.append, Budget(total_seconds=100), max_epochs=60, every_seconds=3600)
    report(0, {"val_score": 0.91, "val_loss": 0.25})
    report(1, {"val_score": 0.93, "val_loss": 0.2})  # within the same interval: no second line
    assert len(lines) == 1 and lines[0].startswith("final training epoch 1/60: validation score 0.9100, loss 0.2500")
    assert "of the stage's 1m40s spent" in lines[0] and "left" in lines[0]


@pytest.mark.timing
def test_fit_stops_at_its_deadline_and_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20_000, 8)).astype(np.float32)
    targets = (features[:, 0] + features[:, 1] > 0).astype(np.int64)
    started = time.time()
    result = fit_network(
        build_network("mlp", [8], 2, {"depth": 2, "width": 128, "activation": "relu", "dropout": 0.0}),
        "classification",
        (features, targets),
        (features[:2000], targets[:2000]),
        {"learning_rate": 1e-3},
        max_epochs=1000,
        batch_size=16,
        seed=0,
        patience=50,
        deadline=started + 3.0,
    )
    assert result.reached_deadline and not result.stopped_early
    assert time.time() - started < 3.0 + 2.0  # the cut epoch's validation, then out
    assert len(result.history) >= 1 and result.best_score > 0.9  # even a cut first epoch has its score


@pytest.mark.timing
def test_a_search_ends_at_its_deadline_with_the_scores_its_trials_reached(tmp_path: Path):
    """Trials that would train for 2,000 epochs are cut at their own cap and report their best epoch;
    the search ends at its deadline, not at its trial count."""
    from components.search.nni_search import run_search

    started = time.time()
    search_setup(tmp_path, rows=400, max_epochs=2000, deadline=started + 45, trial_seconds=20)
    messages: list[str] = []
    result = run_search(
        request(
            tmp_path,
            strategy="random",
            max_trials=20,
            concurrency=2,
            warm_start=[GOOD],
            progress=messages.append,
            deadline=started + 45,
            trial_seconds=20,
            heartbeat_seconds=5,
        )
    )
    elapsed = time.time() - started
    assert elapsed < 45 * 1.1 + 10, f"the search took {elapsed:.0f}s for a 45 s budget"
    finished = [trial for trial in result.trials if trial.status == "SUCCEEDED"]
    assert finished and all(trial.reached_deadline and trial.score is not None for trial in finished)
    assert all(trial.seconds < 20 + 8 for trial in finished), [trial.seconds for trial in finished]
    assert len(result.trials) < 20
    assert result.best.score > 0.8
    assert any("cut at its time limit" in message and "best so far" in message for message in messages)
    assert any("trial(s) running" in message and "of the search left" in message for message in messages)


@pytest.mark.timing
def test_work_after_the_training_is_reserved_before_the_deadline():
    """Validation passes' worth of closing work (test scoring, an ensemble's comparison) come off the
    training's time: a reserve far larger than the time left stops training after its first batch."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4_000, 8)).astype(np.float32)
    targets = (features[:, 0] > 0).astype(np.int64)
    started = time.time()
    result = fit_network(
        build_network("mlp", [8], 2, {"depth": 1, "width": 32, "activation": "relu", "dropout": 0.0}),
        "classification",
        (features, targets),
        (features[:2000], targets[:2000]),
        {"learning_rate": 1e-3},
        max_epochs=1000,
        batch_size=16,
        seed=0,
        deadline=started + 4.0,
        closing_passes=100_000,
    )
    assert result.reached_deadline and len(result.history) == 1
    assert time.time() - started < 2.0  # stopped long before the deadline, leaving room for what follows
