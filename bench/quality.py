"""Tabular quality report vs ydata-profiling's minimal report, on the same generated CSV, in the same run.

Prints the wall time of each side (read + report, and report only), their ratio (target: ours at most 1/3
of ydata's) and the peak memory of each (target: ours at most ydata's). Each side runs once, in a fresh
process that reads the CSV from disk: ours in this venv, ydata in `.venv-bench` (ydata-profiling needs
pandas<3 and numpy<2.4; `make bench` creates it). The CSV is generated once, with a fixed seed, under
`$MODELDECK_HOME/bench/` and reused. If ydata needs more than YDATA_LIMIT_S on ROWS rows, both sides are
measured again on FALLBACK_ROWS.

Image checks are measured by bench/images.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 1_000_000
FALLBACK_ROWS = 500_000
YDATA_LIMIT_S = 15 * 60
SEED = 0
TARGET = "churn"
MISSING_SHARE = 0.01  # of the feature cells (the target is complete)
DUPLICATE_SHARE = 0.005  # of the rows: exact copies of other rows
TIME_TARGET = 1 / 3  # ours / ydata, at most

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"


# -- the data ---------------------------------------------------------------------------------------------
def _words(rng: np.random.Generator, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ter", "an", "su", "ver", "do", "pli", "ro", "nu", "est", "qua", "bel", "tor"]
    picks = rng.integers(0, len(syllables), (size, 3))
    lengths = rng.integers(1, 4, size)
    return sorted(
        {"".join(syllables[i] for i in row[:n]) for row, n in zip(picks.tolist(), lengths.tolist(), strict=True)}
    )


def _sentences(rng: np.random.Generator, vocab: list[str], rows: int, low: int, high: int) -> list[str]:
    picks = rng.integers(0, len(vocab), (rows, high)).tolist()
    lengths = rng.integers(low, high + 1, rows).tolist()
    return [" ".join(vocab[i] for i in row[:n]) for row, n in zip(picks, lengths, strict=True)]


def make_data(rows: int, seed: int = SEED) -> pd.DataFrame:
    """20 columns: 9 numeric, 6 categorical, 2 dates, 2 free text, and a 3-class target that depends on some."""
    rng = np.random.default_rng(seed)
    vocab = _words(rng, 3000)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 91, rows),
            "income": rng.lognormal(10.5, 0.6, rows).round(2),
            "balance": rng.normal(1500, 900, rows).round(2),
            "tenure_months": rng.integers(0, 121, rows),
            "score": rng.uniform(0, 1, rows),
            "visits": rng.poisson(3.0, rows),
            "ratio": rng.beta(2, 5, rows),
            "temperature": rng.normal(21, 4, rows).round(1),
            "discount": np.where(rng.uniform(size=rows) < 0.7, 0.0, rng.uniform(0, 30, rows).round(1)),
            "region": rng.choice(["north", "south", "east", "west", "centre"], rows),
            "plan": rng.choice(["basic", "plus", "premium"], rows, p=[0.6, 0.3, 0.1]),
            "channel": rng.choice([f"channel_{i}" for i in range(8)], rows),
            "city": rng.choice([f"city_{i:03d}" for i in range(200)], rows),
            "product_code": rng.choice([f"P-{i:05d}" for i in range(5000)], rows),
            "active": rng.choice(["yes", "no"], rows, p=[0.8, 0.2]),
            "signup_date": (np.datetime64("2018-01-01") + rng.integers(0, 2500, rows)).astype(str),
            "last_seen": (np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 31_536_000, rows)).astype(str),
            "review": _sentences(rng, vocab, rows, 8, 20),
            "note": _sentences(rng, vocab, rows, 5, 12),
        }
    )
    # 1. The target: a noisy function of a few features, so the report has something real to find.
    logit = (frame["balance"] - 1500) / 900 - (frame["tenure_months"] - 60) / 40 + (frame["plan"] == "basic") * 0.8
    noisy = logit + rng.normal(0, 1, rows)
    frame[TARGET] = np.select([noisy < -0.5, noisy < 1.2], ["stay", "upgrade"], "leave")
    # 2. Missing cells, then duplicates (copies carry their source's gaps, as real duplicates do).
    features = [c for c in frame.columns if c != TARGET]
    holes = rng.uniform(size=(rows, len(features))) < MISSING_SHARE
    for j, name in enumerate(features):
        if pd.api.types.is_integer_dtype(frame[name]):
            frame[name] = frame[name].astype("Int64")
        frame.loc[holes[:, j], name] = None
    copies = int(rows * DUPLICATE_SHARE)
    picked = rng.choice(rows, 2 * copies, replace=False)
    source, copy = picked[:copies], picked[copies:]
    for name in frame.columns:
        col = frame[name].copy()
        col.iloc[copy] = col.iloc[source].to_numpy()
        frame[name] = col
    return frame


def data_file(rows: int) -> Path:
    """The benchmark CSV, generated on first use (a minute or so) and reused after."""
    folder = Path(os.environ.get("MODELDECK_HOME", ROOT / ".modeldeck")).resolve() / "bench"
    path = folder / f"quality-{rows}x20-seed{SEED}-v1.csv"
    if not path.exists():
        print(f"  generating {path} ...", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        make_data(rows).to_csv(partial, index=False)
        partial.rename(path)
    return path


# -- one side, in a fresh process --------------------------------------------------------------------------
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def ours(csv: Path) -> dict[str, float | str]:
    """The app's path: read the CSV, normalise it as an upload is before storing, run every check."""
    from backend.data.datasets import _normalise
    from backend.quality.gate import run_checks

    started = time.perf_counter()
    frame, _ = _normalise(pd.read_csv(csv))
    read = time.perf_counter()
    checks = run_checks(frame, target=TARGET, task="classification")
    json.dumps([c.to_dict() for c in checks])
    done = time.perf_counter()
    label = f"ModelDeck ({len(checks)} checks)"
    return {"label": label, "total_s": done - started, "report_s": done - read, "peak_mb": _peak_mb()}


def ydata(csv: Path) -> dict[str, float | str]:
    """ydata-profiling's minimal report, computed in full and rendered as JSON."""
    import ydata_profiling

    started = time.perf_counter()
    frame = pd.read_csv(csv)
    read = time.perf_counter()
    ydata_profiling.ProfileReport(frame, minimal=True, progress_bar=False).to_json()
    done = time.perf_counter()
    label = f"ydata {ydata_profiling.__version__} minimal"
    return {"label": label, "total_s": done - started, "report_s": done - read, "peak_mb": _peak_mb()}


def measure(python: Path | str, side: str, csv: Path, timeout: float | None = None) -> dict[str, float | str]:
    """Run one side in a fresh process (same environment, threads included); its result is the last line."""
    started = time.perf_counter()
    out = subprocess.run(
        [str(python), "-m", "bench.quality", side, str(csv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.quality {side} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


# -- the table -------------------------------------------------------------------------------------------------
def _row(label: str, r: dict[str, float | str]) -> str:
    return (
        f"  {label:<30} {r['total_s']:>11.1f} s {r['report_s']:>11.1f} s {r['process_s']:>9.1f} s"
        f" {r['peak_mb']:>10,.0f} MB"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(rows: int, csv: Path, mine: dict, theirs: dict | None) -> None:
    size = csv.stat().st_size / 2**20
    print(f"tabular quality report, {rows:,} rows x 20 columns, one run each, fresh processes ({size:,.0f} MB CSV)")
    print(f"  {'':<30} {'read+report':>13} {'report only':>13} {'process':>11} {'peak RSS':>13}")
    print(_row(str(mine["label"]), mine))
    if theirs is None:
        print(f"  ydata-profiling: not measured: {BENCH_VENV} is missing or incomplete. `make bench` creates it.")
        return
    print(_row(str(theirs["label"]), theirs))
    total = float(mine["total_s"]) / float(theirs["total_s"])
    only = float(mine["report_s"]) / float(theirs["report_s"])
    memory = float(mine["peak_mb"]) / float(theirs["peak_mb"])
    print(f"  {'ratio ours/ydata':<30} {total:>13.3f} {only:>13.3f} {'':>11} {memory:>13.3f}")
    print(
        f"  target: time <= {TIME_TARGET:.3f} x ydata: read+report {_verdict(total <= TIME_TARGET)},"
        f" report only {_verdict(only <= TIME_TARGET)}; peak memory <= ydata: {_verdict(memory <= 1)}"
    )


def main() -> None:
    if sys.argv[1:2] in (["ours"], ["ydata"]):
        result = (ours if sys.argv[1] == "ours" else ydata)(Path(sys.argv[2]))
        print(json.dumps(result))
        return
    rows, theirs = ROWS, None
    if (BENCH_VENV / ".installed").exists():  # the Makefile's stamp: ydata-profiling is in
        try:
            theirs = measure(BENCH_PYTHON, "ydata", data_file(rows), timeout=YDATA_LIMIT_S)
        except subprocess.TimeoutExpired:
            print(f"  ydata took over {YDATA_LIMIT_S / 60:.0f} min on {rows:,} rows: both sides on {FALLBACK_ROWS:,}")
            rows = FALLBACK_ROWS
            theirs = measure(BENCH_PYTHON, "ydata", data_file(rows))
    mine = measure(sys.executable, "ours", data_file(rows))
    report(rows, data_file(rows), mine, theirs)


if __name__ == "__main__":
    main()
