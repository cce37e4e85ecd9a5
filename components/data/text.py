"""Free text as token codes: scikit-learn's word analyser (lower-case, word tokens) and a vocabulary
of the dataset's most frequent words. A text becomes a fixed-length row of codes (1..n, 0 for
padding and for words outside the vocabulary); the preprocessing renumbers the codes to the words of
the training split (like categorical columns), so the network only learns words it trained on.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np

MAX_VOCABULARY = 20_000
MAX_TOKENS = 200
TEXT_MIN_MEAN_LENGTH = 20  # characters: a text column is longer than a category on average


@lru_cache(maxsize=1)
def analyzer():
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True).build_analyzer()


def vocabulary_index(vocabulary: list[str]) -> dict[str, int]:
    """Each value's code: 1 for the first, 0 is kept for unknown values (and padding)."""
    return {value: position + 1 for position, value in enumerate(vocabulary)}


def is_text_column(values) -> bool:
    """Free text rather than categories: long values, most of them different."""
    present = [str(value) for value in values if isinstance(value, str)]
    if len(present) < max(1, len(values) // 2):
        return False
    mean_length = sum(len(value) for value in present) / len(present)
    return mean_length >= TEXT_MIN_MEAN_LENGTH and len(set(present)) > 0.5 * len(present)


def build_vocabulary(texts, max_words: int = MAX_VOCABULARY) -> tuple[list[str], int]:
    """The most frequent words (ties in alphabetical order) and a sequence length that holds 95% of
    the texts whole (at most ``MAX_TOKENS``)."""
    analyse = analyzer()
    counts: Counter = Counter()
    lengths = []
    for text in texts:
        tokens = analyse(str(text)) if isinstance(text, str) else []
        counts.update(tokens)
        lengths.append(len(tokens))
    words = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_words]]
    length = int(min(MAX_TOKENS, max(1, np.percentile(lengths, 95) if lengths else 1)))
    return words, length


def encode_texts(texts, vocabulary: list[str] | dict[str, int], length: int) -> np.ndarray:
    """Token codes, shaped (texts, length): words in ``vocabulary`` are 1..n, others 0; cut or padded
    with 0 at the end. A server passes the :func:`vocabulary_index` it built once."""
    analyse = analyzer()
    index = vocabulary if isinstance(vocabulary, dict) else vocabulary_index(vocabulary)
    codes = np.zeros((len(texts), length), dtype=np.float32)
    for row, text in enumerate(texts):
        tokens = analyse(str(text))[:length] if isinstance(text, str) else []
        codes[row, : len(tokens)] = [index.get(token, 0) for token in tokens]
    return codes
