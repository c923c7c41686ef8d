"""Semantic search over the agent's notes without a model download: TF-IDF cosine similarity.

A note and a query are bags of features: words, word pairs, and character 3- to 5-grams of each word (which
match "restock" with "restocked" and survive typos). Weights are sublinear term frequency times smoothed
inverse document frequency over the notes; scores are cosines. Deterministic and the same on every machine.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from functools import lru_cache

CHAR_NGRAMS = (3, 4, 5)


@lru_cache(maxsize=4096)
def features(text: str) -> dict[str, int]:
    """Feature counts of a text (cached: notes are searched again and again). Callers must not mutate it."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    bag: Counter[str] = Counter(f"w:{w}" for w in words)
    bag.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    for word in words:
        padded = f" {word} "
        bag.update(f"c:{padded[i : i + n]}" for n in CHAR_NGRAMS for i in range(len(padded) - n + 1))
    return dict(bag)


def search(notes: list[str], query: str, top_k: int) -> list[tuple[int, float]]:
    """(note index, cosine score) of the `top_k` notes most similar to the query, best first; notes sharing no
    feature with the query are left out. Ties keep the older note first."""
    docs = [features(note) for note in notes]
    n = len(docs)
    document_frequency: Counter[str] = Counter(f for doc in docs for f in doc)

    def weights(counts: dict[str, int]) -> dict[str, float]:
        return {
            f: (1.0 + math.log(c)) * (math.log((1 + n) / (1 + document_frequency[f])) + 1.0)
            for f, c in counts.items()
            if f in document_frequency
        }

    query_weights = weights(features(query))
    query_norm = math.sqrt(sum(w * w for w in query_weights.values()))
    if query_norm == 0.0:
        return []
    scored = []
    for index, doc in enumerate(docs):
        doc_weights = weights(doc)
        dot = sum(w * doc_weights[f] for f, w in query_weights.items() if f in doc_weights)
        if dot > 0.0:
            norm = math.sqrt(sum(w * w for w in doc_weights.values()))
            scored.append((index, dot / (norm * query_norm)))
    scored.sort(key=lambda item: -item[1])
    return scored[:top_k]
