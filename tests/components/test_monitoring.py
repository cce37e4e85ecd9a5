import numpy as np
import pytest

from components.monitoring.drift import fit_drift_detector
from components.monitoring.feature_drift import check_features, fit_feature_detector
from components.monitoring.production import prediction_shift, utilisation
from components.monitoring.report import MonitorReference, check_batch
from components.monitoring.uncertainty import ConformalCalibration, interval_coverage, predictive_entropy, set_coverage


def softmax(logits):
    exponent = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponent / exponent.sum(axis=1, keepdims=True)


def noisy_classifier(rows: int, seed: int):
    """Labels and the probabilities of an imperfect classifier of them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, rows)
    logits = rng.normal(size=(rows, 4))
    logits[np.arange(rows), labels] += 1.5
    return softmax(logits), labels


def test_entropy_bounds():
    assert predictive_entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])) == pytest.approx([0.0, 1.0], abs=1e-6)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95])
def test_conformal_sets_reach_nominal_coverage(confidence):
    calibration_probabilities, calibration_labels = noisy_classifier(2000, 0)
    test_probabilities, test_labels = noisy_classifier(4000, 1)
    conformal = ConformalCalibration.from_validation("classification", calibration_probabilities, calibration_labels)
    sets = conformal.prediction_sets(test_probabilities, confidence)
    assert set_coverage(sets, test_labels) == pytest.approx(confidence, abs=0.02)
    assert sets.sum(axis=1).mean() > 1.0  # an imperfect classifier needs sets larger than one class


def test_conformal_intervals_for_regression(tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.normal(size=3000)
    predictions = targets + rng.normal(scale=0.5, size=3000)
    conformal = ConformalCalibration.from_validation("regression", predictions[:1000, None], targets[:1000])
    intervals = conformal.intervals(predictions[1000:], 0.9)
    assert interval_coverage(intervals, targets[1000:]) == pytest.approx(0.9, abs=0.02)
    conformal.save(tmp_path / "scores.npy")
    assert np.allclose(
        ConformalCalibration.load("regression", tmp_path / "scores.npy").intervals(predictions[:5], 0.9),
        conformal.intervals(predictions[:5], 0.9),
    )


def test_utilisation_and_prediction_shift():
    figures = utilisation(3, 4, np.array([1.0, 2.0, 30.0]), window_seconds=120)
    assert figures["requests_per_minute"] == pytest.approx(1.5) and figures["inputs_per_minute"] == pytest.approx(2.0)
    assert figures["latency_p50_ms"] == pytest.approx(2.0)
    shares = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    assert prediction_shift(rng.choice(3, 400, p=shares), shares) > 0.05
    assert prediction_shift(rng.choice(3, 400, p=[0.1, 0.1, 0.8]), shares) < 0.001


def test_feature_detector_names_the_shifted_feature():
    rng = np.random.default_rng(0)
    detector = fit_feature_detector(rng.normal(size=(500, 3)).astype(np.float32), p_value=0.05)
    batch = rng.normal(size=(200, 3)).astype(np.float32)
    assert not check_features(detector, batch, ["a", "b", "c"])["is_drift"]
    batch[:, 1] += 1.0
    result = check_features(detector, batch, ["a", "b", "c"])
    assert result["is_drift"] and min(result["p_values"], key=result["p_values"].get) == "b"


def test_check_batch_reports_drift_and_uncertainty():
    rng = np.random.default_rng(0)
    reference_rows = rng.normal(size=(400, 3)).astype(np.float32)
    probabilities, labels = noisy_classifier(400, 2)
    reference = MonitorReference(
        task_type="classification",
        embedding_detector=fit_drift_detector(reference_rows, 0.05, 50, 200),
        feature_detector=fit_feature_detector(reference_rows, 0.05),
        feature_names=["a", "b", "c"],
        conformal=ConformalCalibration.from_validation("classification", probabilities, labels),
        confidence=0.9,
        reference_shares=[0.25] * 4,
    )
    calm = check_batch(reference, reference_rows[:150], reference_rows[:150], probabilities[:150])
    assert not calm["drift"] and calm["inputs"] == 150
    # an imperfect classifier at 90% coverage: most prediction sets hold more than one class
    assert 0.3 < calm["uncertain_share"] < 0.9 and 1.3 < calm["mean_set_size"] < 2.5
    shifted_rows = reference_rows[:150] + 1.5
    shifted = check_batch(reference, shifted_rows, shifted_rows, probabilities[:150])
    assert shifted["drift"] and shifted["feature_drift"] and shifted["embedding_mmd_p_value"] <= 0.05


def test_server_figures_between_two_scrapes_and_after_a_restart():
    from components.monitoring.production import server_utilisation

    first = {
        "answered": 90.0,
        "errors": 10.0,
        "cpu_seconds": 4.0,
        "memory_bytes": 200 * 2**20,
        "started_at": 100.0,
        "scraped_at": 200.0,
    }
    second = {**first, "answered": 180.0, "errors": 20.0, "cpu_seconds": 9.0, "scraped_at": 210.0}
    figures = server_utilisation(second, first)
    assert figures["server_requests"] == 100.0
    assert figures["server_error_rate"] == 0.1
    assert figures["server_cpu_share"] == 0.5
    assert figures["server_memory_mb"] == 200.0
    restarted = {**second, "started_at": 205.0, "answered": 10.0, "errors": 0.0, "cpu_seconds": 1.0}
    figures = server_utilisation(restarted, first)
    assert figures["server_requests"] == 10.0 and figures["server_error_rate"] == 0.0 and figures["server_cpu_share"] == 0.2


def test_the_drift_table_reads_as_words_with_its_threshold_and_action():
    from components.monitoring.report import drift_table

    rows = drift_table({"drift": True, "embedding_mmd_p_value": 1.4835e-74, "inputs": 60, "retraining": "started"}, 0.05)
    shown = {row["figure"]: row["value"] for row in rows}
    assert shown["decision"] == "drift" and shown["action"] == "started" and shown["p-value threshold"].startswith("0.05")
    assert shown["embedding mmd p value"] == "1.483e-74" and shown["inputs"] == "60"


def test_artifact_keys_belong_to_their_workspace(tmp_path):
    import re

    from tasks.stage_runner import artifact_key

    first, second = artifact_key("drift-report", tmp_path / "My Project"), artifact_key("drift-report", tmp_path / "other")
    assert first != second and first.startswith("drift-report-my-project-")
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in (first, second))  # what Prefect accepts
