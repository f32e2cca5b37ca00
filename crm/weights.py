"""The matcher's evidence weights: read from a data file, refitted from labelled pairs.

Each comparison of a sender with a candidate gives one level per field ('surname': 'exact',
'given': 'initial_conflict', ...). A weight per level, summed with the prior, is the log-odds
that the candidate is the sender. The weights are a logistic regression over those levels,
fitted on labelled pairs (the benchmark's dev half, or the review queue's confirmed and rejected
decisions); the fitted file ships in the package and a user's refit overrides it.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

PACKAGED = "match_weights.json"


@dataclass(frozen=True)
class Weights:
    prior: float
    levels: dict[str, dict[str, float]] = field(default_factory=dict)
    fitted_on: str = ""
    threshold: float | None = None  # the probability that decides, where the file sets one

    def of(self, name: str, level: str) -> float:
        return self.levels.get(name, {}).get(level, 0.0)

    def log_odds(self, levels: Mapping[str, str]) -> float:
        return self.prior + sum(self.of(name, level) for name, level in levels.items())

    def probability(self, levels: Mapping[str, str]) -> float:
        return 1.0 / (1.0 + math.exp(-max(min(self.log_odds(levels), 35.0), -35.0)))

    def to_json(self) -> str:
        decides = {} if self.threshold is None else {"threshold": round(self.threshold, 4)}
        return json.dumps(
            {"prior": round(self.prior, 4), "fitted_on": self.fitted_on}
            | decides
            | {
                "levels": {
                    name: {level: round(w, 4) for level, w in sorted(levels.items())}
                    for name, levels in sorted(self.levels.items())
                }
            },
            indent=1,
        )


def parse(text: str) -> Weights:
    data = json.loads(text)
    return Weights(
        prior=float(data["prior"]),
        levels={
            str(name): {str(level): float(w) for level, w in levels.items()}
            for name, levels in data["levels"].items()
        },
        fitted_on=str(data.get("fitted_on", "")),
        threshold=None if data.get("threshold") is None else float(data["threshold"]),
    )


def load(path: str | None = None, packaged: str = PACKAGED) -> Weights:
    """The weights in `path` when it exists (read again once it changes: a refit takes effect
    without a restart), else the ones shipped in the package under the name `packaged`."""
    if path:
        try:
            stamp = Path(path).stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp is not None:
            return _read(path, stamp)
    return _packaged(packaged)


@lru_cache(maxsize=8)
def _read(path: str, stamp: int) -> Weights:
    return parse(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _packaged(name: str) -> Weights:
    return parse(resources.files("crm.data").joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def nicknames() -> dict[str, frozenset[int]]:
    """Each given name (folded) and the groups of names it is a form of."""
    groups: dict[str, set[int]] = {}
    text = resources.files("crm.data").joinpath("nicknames.csv").read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    for number, row in enumerate(csv.reader(lines)):
        for name in row:
            groups.setdefault(name.strip().lower(), set()).add(number)
    return {name: frozenset(ids) for name, ids in groups.items()}


def same_person_name(a: str, b: str) -> bool:
    """'kees' and 'cornelis', 'jan' and 'johannes': one is a short form or nickname of the other."""
    table = nicknames()
    return bool(table.get(a, frozenset()) & table.get(b, frozenset()))


def forms_of(name: str) -> list[str]:
    """Every other name of the groups `name` belongs to."""
    table = nicknames()
    mine = table.get(name, frozenset())
    return sorted(other for other, ids in table.items() if ids & mine and other != name)


Sample = tuple[Mapping[str, str], bool]  # the levels of one pair, and whether it is a match


def fit(
    samples: Iterable[Sample],
    *,
    start: Weights | None = None,
    l2: float = 0.0002,
    rounds: int = 3000,
    fitted_on: str = "",
    keep: Iterable[str] = (),
    bounded: bool = True,
) -> Weights:
    """A logistic regression on one-hot levels (plus the prior), by gradient descent with an L2
    pull towards `start`: a level seen rarely keeps about its old weight.

    Evidence only grows stronger than where it starts (up to twice): pairs compare the
    candidates of one sender with each other, so a field they all share (the company's domain)
    would otherwise lose the weight it has against everyone else, and a disagreement rare in the
    labelled pairs still counts in full; the factor two keeps a field the pairs happen to
    favour (every labelled sender gave a city) from outweighing the name.

    The fields in `keep` stay at their starting weights: a field the labelled pairs cannot
    estimate (the benchmark's cities are far more varied than Dutch ones, so a shared city
    would read as near proof).

    Not `bounded`, the weights go where the pairs take them (the L2 pull towards `start` aside):
    a fit from scratch on every blocked pair, which has no such bias.
    The start's threshold carries over."""
    patterns: Counter[tuple[tuple[str, str], ...]] = Counter()
    positives: Counter[tuple[tuple[str, str], ...]] = Counter()
    for sample, match in samples:
        key = tuple(sorted(sample.items()))
        patterns[key] += 1
        positives[key] += match
    if not patterns:
        raise ValueError("no labelled pairs to fit on")
    base = start or Weights(prior=0.0)
    kept = set(keep)
    features = sorted({pair for key in patterns for pair in key if pair[0] not in kept})
    fixed = {pair: base.of(*pair) for key in patterns for pair in key if pair[0] in kept}
    w = {f: base.of(*f) for f in features}
    anchor = dict(w)
    prior = base.prior
    total = sum(patterns.values())
    rate = 0.05
    # Adam's per-weight step: some levels are seen a thousand times more often than others.
    m: dict[tuple[str, str] | None, float] = {}
    v: dict[tuple[str, str] | None, float] = {}
    for step in range(1, rounds + 1):
        grad: dict[tuple[str, str] | None, float] = dict.fromkeys(features, 0.0)
        grad[None] = 0.0
        for key, n in patterns.items():
            z = prior + sum(w[f] if f in w else fixed[f] for f in key)
            p = 1.0 / (1.0 + math.exp(-max(min(z, 35.0), -35.0)))
            error = (p * n - positives[key]) / total
            grad[None] += error
            for pair in key:
                if pair in grad:
                    grad[pair] += error
        for feature in features:
            grad[feature] += l2 * (w[feature] - anchor[feature])
        for f, g in grad.items():
            m[f] = 0.9 * m.get(f, 0.0) + 0.1 * g
            v[f] = 0.999 * v.get(f, 0.0) + 0.001 * g * g
            delta = rate * (m[f] / (1 - 0.9**step)) / (math.sqrt(v[f] / (1 - 0.999**step)) + 1e-8)
            if f is None:
                prior -= delta
            else:
                w[f] = _bounded(w[f] - delta, anchor[f]) if bounded else w[f] - delta
    fitted = {name: dict(levels) for name, levels in base.levels.items()}
    for (name, level), weight in w.items():
        fitted.setdefault(name, {})[level] = weight
    return Weights(prior=prior, levels=fitted, fitted_on=fitted_on, threshold=base.threshold)


def _bounded(weight: float, start: float) -> float:
    """Evidence only grows stronger (up to twice its starting weight); a level that started
    at nothing moves at most two either way."""
    if start < 0:
        return min(max(weight, 2 * start), start)
    if start > 0:
        return min(max(weight, start), 2 * start)
    return min(max(weight, -2.0), 2.0)
