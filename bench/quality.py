"""The tabular quality report as a user gets it, against ydata-profiling's minimal report, on several table shapes.

For each shape, every side runs in a fresh process on the same generated CSV (read once beforehand, so every side
finds it in the page cache):
- ours: `modeldeck data add FILE --target T` (read, profile, store as Parquet) and then `modeldeck data check NAME`
  (load the version, run every check, store the report), each a process of its own in an empty home;
- ydata: `pandas.read_csv` and `ProfileReport(minimal=True).to_json()`, in `.venv-bench` (ydata-profiling needs
  pandas<3 and numpy<2.4; `make bench` creates it);
- pyarrow: a bare `pyarrow.csv.read_csv` of the file, the floor for `data add`.

Each row prints wall times (whole processes, imports included: what a user waits for; the median of REPEATS
runs of each side, one run of ydata where that took over YDATA_ONCE_S), the ratio ours/ydata
(target: at most 1/3), the ratio `data add`/pyarrow (target: at most 1.5), the same ratio past each side's
start-up (what the data costs each, once imports and for ours the database are paid: measured on a three-row file)
and each side's peak RSS. A shape on
which ydata takes over YDATA_LIMIT_S is measured again on a quarter of its rows, and the table says so. The CSVs are
generated once, with fixed seeds, under `$MODELDECK_HOME/bench/` and reused. Uploads over the default 200 MB limit
are let through with MODELDECK_MAX_UPLOAD_MB for ours. `python -m bench.quality [SHAPE ...]` runs some shapes.

Image checks are measured by bench/images.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np  # in both venvs; pyarrow, only in ours, is imported where the data is written

SEED = 0
TIME_TARGET = 1 / 3  # ours (add + check) / ydata, at most
PARSE_TARGET = 1.5  # `data add` / a bare pyarrow parse, at most
REPEATS = 3  # every side runs this many times and the median counts…
YDATA_ONCE_S = 30  # …but ydata once when one run takes longer than this (on the mixed table, 95 s)
YDATA_LIMIT_S = 240  # a shape whose ydata report takes longer is measured again on a quarter of its rows
UPLOAD_MB = 4096  # MODELDECK_MAX_UPLOAD_MB for our side: the mixed table is over the default 200 MB

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"


# -- the data: one generator per shape, each a dict of columns (numpy arrays or lists, None for missing) ---------
def _holes(rng: Any, values: Any, share: float) -> Any:
    """`values` as an object array with `share` of it missing (None)."""
    out = np.asarray(values, dtype=object)
    out[rng.uniform(size=len(out)) < share] = None
    return out


def _words(rng: Any, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ter", "an", "su", "ver", "do", "pli", "ro", "nu", "est", "qua", "bel", "tor"]
    picks = rng.integers(0, len(syllables), (size, 3)).tolist()
    lengths = rng.integers(1, 4, size).tolist()
    return sorted({"".join(syllables[i] for i in row[:n]) for row, n in zip(picks, lengths, strict=True)})


def _sentences(rng: Any, rows: int, low: int, high: int) -> list[str]:
    vocab = _words(rng, 3000)
    picks = rng.integers(0, len(vocab), (rows, high)).tolist()
    lengths = rng.integers(low, high + 1, rows).tolist()
    return [" ".join(vocab[i] for i in row[:n]) for row, n in zip(picks, lengths, strict=True)]


def _codes(rng: Any, prefix: str, distinct: int, rows: int) -> Any:
    """Category codes like "u-004711" drawn from `distinct` values (Zipf-like: a few common, many rare)."""
    weights = 1 / np.arange(1, distinct + 1) ** 0.6
    picks = rng.choice(distinct, rows, p=weights / weights.sum())
    width = len(str(distinct))
    return np.char.add(prefix, np.char.zfill(picks.astype(str), width)).astype(object)


def _dates(rng: Any, rows: int, start: str = "2015-01-01", days: int = 3650) -> Any:
    return (np.datetime64(start) + rng.integers(0, days, rows)).astype(str).astype(object)


def mixed(rows: int, rng: Any) -> dict[str, Any]:
    """The issue's table: ten normal numbers, five categories with gaps, a row number, a log-normal price, dates,
    a short free text and a binary label."""
    columns: dict[str, Any] = {"row": np.arange(1, rows + 1)}
    for i in range(10):
        columns[f"x{i}"] = rng.normal(0, 1 + i, rows)
    for i, n in enumerate([3, 8, 40, 200, 2000]):
        columns[f"cat{i}"] = _holes(rng, _codes(rng, f"c{i}_", n, rows), 0.05)
    columns["price"] = rng.lognormal(3, 1, rows).round(2)
    columns["day"] = _dates(rng, rows)
    columns["comment"] = _sentences(rng, rows, 2, 6)
    logit = columns["x0"] - columns["x1"] / 2 + (columns["cat0"] == "c0_0") * 0.8
    columns["label"] = (logit + rng.normal(0, 1, rows) > 0).astype(np.int64)
    return columns


def wide(rows: int, rng: Any) -> dict[str, Any]:
    """100 numeric columns (normal, uniform, log-normal, counts), rounded as measurements are, and a label."""
    columns: dict[str, Any] = {}
    for i in range(100):
        kind = i % 4
        if kind == 0:
            values = rng.normal(50, 10, rows).round(3)
        elif kind == 1:
            values = rng.uniform(0, 1, rows).round(4)
        elif kind == 2:
            values = rng.lognormal(2, 0.8, rows).round(2)
        else:
            values = rng.poisson(4, rows).astype(np.float64)
        columns[f"f{i:03d}"] = values
    columns["label"] = ((columns["f000"] - 50) / 10 + rng.normal(0, 1, rows) > 0).astype(np.int64)
    return columns


def cardinal(rows: int, rng: Any) -> dict[str, Any]:
    """Identifiers and categories with ~100k distinct values, beside a few ordinary columns."""
    order = rng.permutation(rows)
    return {
        "customer_id": np.char.add("CUST-", np.char.zfill(order.astype(str), 8)).astype(object),
        "session": np.char.add("s", (order * 7919 % 10**9).astype(str)).astype(object),
        "visitor": _codes(rng, "v-", 100_000, rows),
        "offer": _codes(rng, "o-", 50_000, rows),
        "zip": _holes(rng, _codes(rng, "z", 30_000, rows), 0.02),
        "city": _codes(rng, "city_", 5_000, rows),
        "store": _codes(rng, "st", 300, rows),
        "amount": rng.lognormal(3, 1, rows).round(2),
        "quantity": rng.integers(1, 20, rows),
        "rating": rng.normal(3.5, 1, rows).round(1),
        "label": rng.choice(["keep", "churn", "upgrade"], rows, p=[0.7, 0.2, 0.1]).astype(object),
    }


def sparse(rows: int, rng: Any) -> dict[str, Any]:
    """About 40% of every feature missing: numbers, counts, categories, flags, dates and text."""
    columns: dict[str, Any] = {}
    for i in range(6):
        columns[f"num{i}"] = _holes(rng, rng.normal(10 * i, 3, rows).round(3), 0.4)
    for i in range(2):
        columns[f"count{i}"] = _holes(rng, rng.poisson(2 + i, rows), 0.4)
    for i, n in enumerate([4, 25, 600, 10_000]):
        columns[f"cat{i}"] = _holes(rng, _codes(rng, f"k{i}_", n, rows), 0.4)
    columns["flag"] = _holes(rng, rng.choice(["yes", "no"], rows).astype(object), 0.4)
    columns["when"] = _holes(rng, _dates(rng, rows), 0.4)
    columns["note"] = _holes(rng, np.array(_sentences(rng, rows, 3, 10), dtype=object), 0.4)
    columns["label"] = rng.choice(["a", "b"], rows, p=[0.6, 0.4]).astype(object)
    return columns


@dataclass(frozen=True)
class Shape:
    """One generated table: its rows, its target, its generator and the share of rows copied from others."""

    name: str
    rows: int
    target: str
    make: Callable[[int, Any], dict[str, Any]]
    duplicates: float = 0.0
    version: int = 1  # bump when a generator changes, so a cached CSV is made again

    def describe(self, columns: int) -> str:
        return f"{self.name}: {self.rows:,} rows x {columns} columns"


SHAPES = {
    s.name: s
    for s in [
        Shape("mixed", 1_000_000, "label", mixed, duplicates=0.005),
        Shape("wide", 200_000, "label", wide),
        Shape("cardinal", 500_000, "label", cardinal),
        Shape("sparse", 500_000, "label", sparse, duplicates=0.002),
    ]
}


def _table(shape: Shape) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(SEED)
    columns = shape.make(shape.rows, rng)
    order = np.arange(shape.rows)
    copies = int(shape.rows * shape.duplicates)
    if copies:  # exact copies of other rows, gaps included
        picked = rng.choice(shape.rows, 2 * copies, replace=False)
        order[picked[copies:]] = picked[:copies]
    return pa.table({name: pa.array(values).take(order) for name, values in columns.items()})


def data_file(shape: Shape) -> Path:
    """The shape's CSV, generated on first use and reused after."""
    import pyarrow.csv as pa_csv

    folder = Path(os.environ.get("MODELDECK_HOME", ROOT / ".modeldeck")).resolve() / "bench"
    path = folder / f"quality-{shape.name}-{shape.rows}-seed{SEED}-v{shape.version}.csv"
    if not path.exists():
        print(f"  generating {path} ...", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        # Never quoted (no value holds a comma or a quote): pandas and spreadsheets quote only where needed.
        table = _table(shape)
        partial.write_text(",".join(table.column_names) + "\n")
        with partial.open("ab") as out:
            pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        partial.rename(path)
    return path


# -- the sides, each in a fresh process ------------------------------------------------------------------------
@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_mb: float


def _run(command: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None) -> Timed:
    """Wall time and peak RSS of one process (its own rusage, from wait4); a failure raises with its stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise subprocess.TimeoutExpired(command, timeout or 0)
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 3):  # 3: `data check` found a blocker, which is a result
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}):\n{tail}")
    return Timed(seconds, usage.ru_maxrss / 1024)  # kB on Linux


def _median(runs: list[Timed]) -> Timed:
    """The run of median time (its own peak with it): one slow start on a busy machine does not decide a row."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def pyarrow_parse(csv: Path) -> Timed:
    return _run([sys.executable, "-c", "import sys, pyarrow.csv; pyarrow.csv.read_csv(sys.argv[1])", str(csv)])


def start_up(folder: Path) -> tuple[float, float]:
    """What each side pays before the first byte of the data: `data add` of a three-row file, and a pyarrow parse
    of the same (imports, and for ours the database). Each is the best of three runs."""
    tiny = folder / "start-up.csv"
    tiny.write_text("a,b,label\n1,x,0\n2,y,1\n3,z,0\n")
    shape = Shape("start-up", 3, "label", mixed)
    ours_s = min(ours(tiny, shape)[0].seconds for _ in range(3))
    theirs_s = min(pyarrow_parse(tiny).seconds for _ in range(3))
    return ours_s, theirs_s


def ours(csv: Path, shape: Shape) -> tuple[Timed, Timed]:
    """`data add` and then `data check`, each a fresh process, in a home that holds no data yet (so the version is
    written) but a database already made (as every home but a brand-new one has)."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=csv.parent))
    env = {**os.environ, "MODELDECK_HOME": str(home), "MODELDECK_MAX_UPLOAD_MB": str(UPLOAD_MB)}
    cli = [sys.executable, "-m", "backend.cli", "--home", str(home), "data"]
    try:
        _run([*cli, "list"], env=env)
        add = _run([*cli, "add", str(csv), "--name", shape.name, "--target", shape.target], env=env)
        check = _run([*cli, "check", shape.name], env=env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return add, check


def _ydata_child(csv: str) -> None:
    import pandas as pd
    import ydata_profiling

    ydata_profiling.ProfileReport(pd.read_csv(csv), minimal=True, progress_bar=False).to_json()


def ydata(csv: Path) -> Timed | str:
    """ydata's minimal report in its own venv; a note instead when it is missing, or "slow" past YDATA_LIMIT_S."""
    if not (BENCH_VENV / ".installed").exists():  # the Makefile's stamp: ydata-profiling is in
        return f"not measured: {BENCH_VENV.name} is missing (`make bench` creates it)"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        return _run([str(BENCH_PYTHON), "-m", "bench.quality", "--ydata", str(csv)], env=env, timeout=YDATA_LIMIT_S)
    except subprocess.TimeoutExpired:
        return "slow"


def _warm(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(16 * 2**20):
            pass


# -- the table -----------------------------------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


HEADER = (
    f"  {'shape':<14} {'add':>5} {'check':>6} {'ours':>6} {'ydata':>6} {'ours/ydata':>11} {'pyarrow':>8}"
    f" {'add/pyarrow':>12} {'past start-up':>14}   peak MB: {'add':>5} {'check':>5} {'ydata':>5} {'pyarrow':>7}"
)


def _line(
    shape: Shape, floor: Timed, add: Timed, check: Timed, theirs: Timed | None, starts: tuple[float, float]
) -> str:
    total, parse = add.seconds + check.seconds, add.seconds / floor.seconds
    work = (add.seconds - starts[0]) / max(floor.seconds - starts[1], 1e-3)  # the data's share of each side
    ratio = "-" if theirs is None else f"{total / theirs.seconds:.3f} {_verdict(total / theirs.seconds <= TIME_TARGET)}"
    their_s, their_mb = ("-", "-") if theirs is None else (f"{theirs.seconds:.1f}", f"{theirs.peak_mb:.0f}")
    label = f"{shape.name} {shape.rows / 1000:,.0f}k"
    return (
        f"  {label:<14} {add.seconds:>5.1f} {check.seconds:>6.1f} {total:>6.1f} {their_s:>6} {ratio:>11}"
        f" {floor.seconds:>8.1f} {f'{parse:.2f} {_verdict(parse <= PARSE_TARGET)}':>12} {work:>14.2f}"
        f"            {add.peak_mb:>5.0f} {check.peak_mb:>5.0f} {their_mb:>5} {floor.peak_mb:>7.0f}"
    )


def measure(shape: Shape, starts: tuple[float, float]) -> list[str]:
    """The shape's row of the table; when ydata is too slow on it, a note and the row for a quarter of the rows."""
    csv = data_file(shape)
    _warm(csv)
    floor = _median([pyarrow_parse(csv) for _ in range(REPEATS)])
    runs = [ours(csv, shape) for _ in range(REPEATS)]
    add, check = _median([a for a, _ in runs]), _median([c for _, c in runs])
    theirs = ydata(csv)
    if isinstance(theirs, Timed) and theirs.seconds <= YDATA_ONCE_S:
        again = [ydata(csv) for _ in range(REPEATS - 1)]
        theirs = _median([theirs, *(t for t in again if isinstance(t, Timed))])
    if theirs == "slow" and shape.rows >= 4000:
        smaller = replace(shape, rows=shape.rows // 4)
        note = f"    ydata took over {YDATA_LIMIT_S} s on {shape.name}: measured again on {smaller.rows:,} rows"
        return [_line(shape, floor, add, check, None, starts), note, *measure(smaller, starts)]
    if isinstance(theirs, str):
        return [_line(shape, floor, add, check, None, starts), f"    ydata {theirs}"]
    return [_line(shape, floor, add, check, theirs, starts)]


def main() -> None:
    if sys.argv[1:2] == ["--ydata"]:
        _ydata_child(sys.argv[2])
        return
    names = [a for a in sys.argv[1:] if a in SHAPES] or list(SHAPES)
    print("tabular quality report: `data add` + `data check` vs ydata-profiling minimal, fresh processes, seconds")
    for name in names:
        shape = SHAPES[name]
        csv = data_file(shape)
        with csv.open() as f:
            width = len(f.readline().split(","))
        print(f"  {shape.describe(width)}, {csv.stat().st_size / 2**20:,.0f} MB CSV, target {shape.target}")
    print(
        f"  targets: ours/ydata <= {TIME_TARGET:.3f}, add/pyarrow <= {PARSE_TARGET};"
        f" ours with MODELDECK_MAX_UPLOAD_MB={UPLOAD_MB}"
    )
    starts = start_up(data_file(SHAPES[names[0]]).parent)
    print(
        f"  start-up (a three-row file): `data add` {starts[0]:.2f} s, pyarrow {starts[1]:.2f} s;"
        " past start-up = (add - its start-up) / (pyarrow - its start-up)"
    )
    print(HEADER, flush=True)
    for name in names:
        for line in measure(SHAPES[name], starts):
            print(line, flush=True)


if __name__ == "__main__":
    main()
