"""Duplicate and near-duplicate questions removed, the first one kept.

Two questions are near-duplicates when, ignoring spacing and punctuation, their character bigrams
overlap by at least `threshold` (Jaccard) AND they mention the same numbers and quoted values:
"2023年4月1日的营收" and "2023年4月2日的营收" ask different things.
"""
from __future__ import annotations

import re
from typing import Sequence, TypeVar

from data_pipeline.qa.model import QAPair

NEAR_DUPLICATE_THRESHOLD = 0.85
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_VALUES = re.compile(r"\d+(?:\.\d+)?|“[^”]*”|\"[^\"]*\"|'[^']*'|「[^」]*」")

P = TypeVar("P", bound=QAPair)


def normalize(question: str) -> str:
    return _NOISE.sub("", question).lower()


def remove_duplicates(pairs: Sequence[P], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[list[P], int]:
    """(kept pairs in order, number removed)."""
    kept: list[P] = []
    seen_exact: set[str] = set()
    fingerprints: list[tuple[frozenset[str], tuple[str, ...]]] = []
    for pair in pairs:
        text = normalize(pair.question)
        if not text or text in seen_exact:
            continue
        grams = _bigrams(text)
        values = tuple(_VALUES.findall(pair.question))
        if any(values == other_values and _jaccard(grams, other) >= threshold
               for other, other_values in fingerprints):
            continue
        seen_exact.add(text)
        fingerprints.append((grams, values))
        kept.append(pair)
    return kept, len(pairs) - len(kept)


def _bigrams(text: str) -> frozenset[str]:
    if len(text) < 2:
        return frozenset({text})
    return frozenset(text[i:i + 2] for i in range(len(text) - 1))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
