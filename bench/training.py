"""Training engine vs plain `model.fit`, on the same generated data, in the same run: the tabular MLP,
the text classifier and the image classifier.

For each model, prints samples per second of both and their ratio (target: at least 0.95) two ways, a third
ratio for the engine's callbacks alone, and the time from submitting a run to its first metric in the DB with a
worker already running (what a user waits for between "Start" and the first point of the curve).
`python -m bench.training [mlp] [text] [image] [--rounds N]` runs some of the models, or other numbers of rounds
than their own (24 for the MLP, 8 for the others).

The engine side uploads the data once and keeps one worker; each of its runs is a job in a fresh
child process. The plain side, also in a fresh process each round, builds the same network and tf.data
pipelines through the family's own `prepare`, then calls a bare `fit` with no callbacks. It sets the seed and
op determinism before its first op, as every engine run does so that "Run again" is exact: the issue asks for
both, so they are part of the model being trained, not of the engine's overhead. A second plain fit each round
leaves op determinism out, and its ratio prints determinism's own cost, which is outside the target.
The sides run round by round, in an order that alternates for each pair compared.

This 2-core VM loses a varying share of its CPU to its host: the same fit runs at 12-40k samples/s from one
minute to the next, and two identical plain fits, run as the two sides of this bench for 8 rounds, gave
ratios from 0.84 to 1.37 and a geometric mean of 1.12. (Stalls of 0.1-1.3 s at the start of random epochs,
once blamed on the host, were tf.data's autotuner, now off: `models.task.prefetched`.)
So each ratio is printed as the geometric mean of the rounds' paired ratios with its 95% interval
(Student's t over the rounds), which says whether this run could tell the target apart at all:
- whole fit: samples over the whole `fit`, the first epoch's tracing included, as the run page reports them;
  beside it, each side's best round against the other's;
- steady epoch: the median time of the epochs after the second, with their validation pass and every
  epoch-end callback; a stall moves a median of three epochs much less than a total. The engine's epoch ends
  come from its TensorBoard scalars, which its background writer stamps 2-10 ms after the epoch ends, after
  the backup and the DB record, and 40-60 ms after it the first time: so the second epoch is left out too.
The rounds are even in number and alternate which side goes first, so an advantage for going first cancels
out. A third ratio narrows the engine's own share down:
- engine callbacks, in-process: the engine's callbacks with their DB writes against none, on two copies of the
  run's network in one fresh process that train an epoch each in turn. Slow minutes of the host fall on both
  copies alike, so this ratio resolves a few percent. It leaves out what only the worker adds: the job's own
  process, and the worker's and the page's polling of the DB.

Op determinism costs the MLP 0-5% within one process (two copies of the network, each traced under its setting,
trained in 600-step chunks that take turns). Set before a process's first op, as the engine sets it, it cost
12-17% in fresh-process pairs of plain fits; the last ratio measures that again, every run.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = 0.95  # engine / plain samples per second, at least
ROOT = Path(__file__).resolve().parent.parent


# -- generated data -------------------------------------------------------------------------------------------
def table(rows: int = 60_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["plan"] = rng.choice(["basic", "plus", "premium"], rows)
    score = frame["x0"] - 0.5 * frame["x1"] + (frame["plan"] == "basic") + rng.normal(0, 0.5, rows)
    frame["label"] = np.where(score > 0.5, "yes", "no")
    return frame


WORDS = {
    "great": "great tasty lovely fresh perfect delicious excellent happy smooth rich".split(),
    "other": "awful stale bland broken terrible soggy disappointing bad bitter weak".split(),
}
FILLER = "the tea box arrived and it was really quite coffee flavour price for my family every morning".split()


def reviews(rows: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Reviews of 20-60 words whose sentiment words decide the label."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["great", "other"], rows)
    texts = [
        " ".join([*rng.choice(FILLER, int(rng.integers(18, 55))), *rng.choice(WORDS[label], 3)]) for label in labels
    ]
    return pd.DataFrame({"review": texts, "score": labels})


def shapes(count: int = 4_000, size: int = 28, seed: int = 0) -> list[tuple[str, str, bytes]]:
    """Grey PNGs of horizontal bars, vertical bars or a disc, with noise: (class, name, bytes)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    result = []
    for i in range(count):
        kind = ("hbars", "vbars", "disc")[i % 3]
        image = Image.fromarray(rng.integers(0, 60, (size, size), dtype=np.uint8), "L")
        draw = ImageDraw.Draw(image)
        offset = int(rng.integers(0, size // 4))
        if kind == "disc":
            draw.ellipse([offset, offset, offset + size // 2, offset + size // 2], fill=255)
        else:
            for line in range(offset, size, 4):
                draw.rectangle([0, line, size, line + 1] if kind == "hbars" else [line, 0, line + 1, size], fill=255)
        out = io.BytesIO()
        image.save(out, "PNG")
        result.append((kind, f"{i:05d}.png", out.getvalue()))
    return result


# -- the models -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    title: str
    task: str
    epochs: int
    batch: int
    sets: dict[str, Any]  # hyperparameters besides epochs and batch size
    write: Callable[[Path], Path]  # writes the upload; returns its path
    task_data: Callable[[], Any]  # the same data as the family receives it, for the plain fit
    rounds: int = 8  # even, so that each side goes first equally often


def _write_csv(frame: Callable[[], pd.DataFrame], name: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        frame().to_csv(path, index=False)
        return path

    return write


def _write_zip(folder: Path) -> Path:
    path = folder / "shapes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for kind, name, data in shapes():
            archive.writestr(f"{kind}/{name}", data)
    return path


def _table_data() -> Any:
    from backend.data.datasets import _normalise, profile
    from models.task import TaskData

    frame, _ = _normalise(table())
    columns = [c.to_dict() for c in profile(frame)]
    return TaskData(frame=frame, roles={"target": "label"}, columns=columns, task="classification")


def _text_data() -> Any:
    from models.task import TaskData

    return TaskData(frame=reviews(), roles={"target": "score", "text": "review"}, task="text-classification")


def _image_data() -> Any:
    from models.task import TaskData

    items = shapes()
    frame = pd.DataFrame(
        {
            "image": [data for _, _, data in items],
            "label": [kind for kind, _, _ in items],
            "split": pd.Series([None] * len(items), dtype="string"),
            "mode": "L",
            "width": 28,
            "height": 28,
        }
    )
    return TaskData(frame=frame, roles={"target": "label"}, task="image-classification")


CASES = {
    c.name: c
    for c in [
        Case(  # its fits are short and its engine's margin is the thinnest: rounds enough to resolve about ±4%
            "mlp",
            "tabular MLP, 60,000 rows",
            "classification",
            5,
            64,
            {},
            _write_csv(table, "mlp.csv"),
            _table_data,
            24,
        ),
        Case(
            "text",
            "text bag of embeddings, 20,000 reviews",
            "text-classification",
            5,
            32,
            {"architecture": "bag"},
            _write_csv(reviews, "text.csv"),
            _text_data,
        ),
        Case("image", "image CNN, 4,000 images of 28 px", "image-classification", 5, 64, {}, _write_zip, _image_data),
    ]
}


def _spec(case: Case) -> Any:
    from models.tasks import make_spec

    values = {"epochs": case.epochs, "batch_size": case.batch, "early_stopping": False, **case.sets}
    return make_spec("balanced", values, task=case.task)


@dataclass(frozen=True)
class Fit:
    samples_per_s: float  # over the whole fit, the first epoch's tracing included
    epoch_s: float  # the median time of the epochs after the second, callbacks included


def steady_epoch_s(ends: list[float]) -> float:
    """The median time between consecutive epoch ends from the second on: one epoch after the second, with its
    validation pass and every epoch-end callback (the module docstring says why the median and why not the
    second)."""
    return statistics.median(b - a for a, b in itertools.pairwise(ends[1:]))


def plain_fit(case: Case, *, determinism: bool) -> Fit:
    """The family's network and pipelines, trained by a bare `model.fit`; with op determinism set before the
    first op, as `backend.training.train` sets it, or without."""
    import importlib

    import keras
    import tensorflow as tf

    from models.tasks import task_info

    class EpochEnds(keras.callbacks.Callback):  # no batch hook, so the steps stay pipelined as in a bare fit
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.ends.append(time.time())

    spec = _spec(case)
    keras.utils.set_random_seed(spec.seed)
    if determinism:
        tf.config.experimental.enable_op_determinism()
    prepared = importlib.import_module(task_info(case.task).family).prepare(
        case.task_data(), spec=spec, batch_size=case.batch
    )
    net = prepared.build()
    clock = EpochEnds()
    started = time.perf_counter()
    net.fit(
        prepared.train,
        validation_data=prepared.validation,
        epochs=case.epochs,
        verbose=0,
        shuffle=False,
        callbacks=[clock],
    )
    rate = prepared.train_examples * case.epochs / (time.perf_counter() - started)
    return Fit(rate, steady_epoch_s(clock.ends))


def engine_epoch_ends(run_dir: Path) -> list[float]:
    """When each epoch of an engine run ended: the wall times of its TensorBoard loss scalars, which the last
    epoch-end callback writes."""
    import tensorflow as tf

    ends = {}
    for path in sorted((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            if any(value.tag == "epoch_loss" for value in event.summary.value):
                ends[event.step] = event.wall_time
    return [ends[step] for step in sorted(ends)]


def callbacks_in_one_process(home: Path, run_id: int, rounds: int) -> list[float]:
    """Bare epoch time / epoch time with the engine's callbacks, DB writes included, per round: two copies of the
    run's network in one process, trained an epoch each in turn, so the host's slow minutes fall on both alike.
    An epoch is timed from its first callback's start to its last callback's end: steps, validation and every
    epoch-end callback, without a fit's own setup."""
    import importlib

    import keras
    import tensorflow as tf

    from backend.config import Paths
    from backend.jobs.training import fit_callbacks, task_data
    from db import open_store
    from models.tasks import spec_from_dict, task_info

    class Mark(keras.callbacks.Callback):  # first among a fit's callbacks ("begin") or last ("end")
        def __init__(self, at: str, marks: list[float]) -> None:
            super().__init__()
            self.at, self.marks = at, marks

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.at == "begin":
                self.marks.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.at == "end":
                self.marks.append(time.perf_counter())

    store, paths = open_store(f"sqlite:///{home / 'modeldeck.db'}"), Paths(home)
    run = store.get_run(run_id)
    assert run is not None
    spec = spec_from_dict(run.spec, task=run.task)
    keras.utils.set_random_seed(spec.seed)
    tf.config.experimental.enable_op_determinism()  # on for both copies, as in every engine run
    prepared = importlib.import_module(task_info(run.task).family).prepare(
        task_data(store, paths=paths, run=run), spec=spec, batch_size=spec.batch_size
    )
    bare, engine = prepared.build(), prepared.build()
    begins: dict[str, list[float]] = {"bare": [], "engine": []}
    ends: dict[str, list[float]] = {"bare": [], "engine": []}
    for epoch in range(rounds + 1):  # the first epoch of each copy traces its functions: left out
        for side in ("bare", "engine") if epoch % 2 else ("engine", "bare"):
            extra = []
            if side == "engine":
                extra = fit_callbacks(
                    store,
                    run,
                    spec,
                    run_dir=paths.run_dir(run.id),
                    train_examples=prepared.train_examples,
                    batch=spec.batch_size,
                )[1]
            net = bare if side == "bare" else engine
            clocks = [Mark("begin", begins[side]), *extra, Mark("end", ends[side])]
            net.fit(
                prepared.train,
                validation_data=prepared.validation,
                initial_epoch=epoch,
                epochs=epoch + 1,
                callbacks=clocks,
                verbose=0,
                shuffle=False,
            )
    bare_s, engine_s = ([e - b for b, e in zip(begins[k], ends[k], strict=True)][1:] for k in ("bare", "engine"))
    return [b / e for b, e in zip(bare_s, engine_s, strict=True)]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), *args], capture_output=True, text=True, check=True
    )


class Engine:
    """The engine: one home with the upload added and one worker; each `fit` is a run through a worker job with
    callbacks and DB writes, as from the Training page."""

    def __init__(self, case: Case, folder: Path) -> None:
        from backend.data import datasets
        from db import open_store

        self.case, self.home = case, folder / "home"
        target = {"classification": ["--target", "label"], "text-classification": ["--target", "score"]}
        upload = case.write(folder)
        args = ["data", "add", str(upload), "--name", case.name, *target.get(case.task, []), "--json"]
        name = str(json.loads(cli(self.home, *args).stdout)["name"])
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "--home", str(self.home), "worker"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.store = open_store(f"sqlite:///{self.home / 'modeldeck.db'}")
        os.environ["MODELDECK_HOME"] = str(self.home)  # where `fit` submits runs from this process, as the page does
        _, self.version = datasets.resolve(self.store, name)  # the page has the version at hand when Start is pressed
        while not self.store.live_workers(stale_after_s=30):
            time.sleep(0.2)

    def fit(self) -> tuple[Fit, float]:
        """Returns the fit and the seconds from submitting, as the Training page's "Start" does, to the first
        metric in the DB."""
        from backend.config import Paths
        from backend.jobs import runs

        case, store = self.case, self.store
        submitted = time.perf_counter()
        run_id = runs.start_training(store, version=self.version, task=case.task, overrides=self._overrides()).id
        while not store.run_metrics(run_id):
            time.sleep(0.2)  # about as often as the Training page looks; tighter polling steals a core share
        first_metric = time.perf_counter() - submitted
        while store.get_run(run_id).status in ("queued", "running"):
            time.sleep(1.0)  # the run's own progress gives its speed; this only waits for the end
        run = store.get_run(run_id)
        assert run is not None and run.status == "succeeded", run.error if run else run_id
        ends = engine_epoch_ends(Paths(self.home).run_dir(run_id))
        return Fit(float(run.progress["samples_per_s"]), steady_epoch_s(ends)), first_metric

    def _overrides(self) -> dict[str, Any]:
        case = self.case
        return {**case.sets, "epochs": case.epochs, "batch_size": case.batch, "early_stopping": False}

    def unclaimed_run(self) -> int:
        """Stops the worker and queues a run that nobody takes: the in-process comparison's."""
        from backend.jobs import runs

        self.worker.terminate()
        self.worker.wait(30)
        return runs.start_training(
            self.store, version=self.version, task=self.case.task, overrides=self._overrides()
        ).id

    def close(self) -> None:
        os.environ.pop("MODELDECK_HOME", None)
        self.worker.terminate()
        self.worker.wait(30)
        self.store.close()


def _bench_child(*args: str) -> str:
    """The last line a fresh `python -m bench.training ARGS` prints."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.training", *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return out.stdout.strip().splitlines()[-1]


def plain_fit_in_child(case: Case, *, determinism: bool) -> Fit:
    return Fit(**json.loads(_bench_child("plain", case.name, "determinism" if determinism else "free")))


def geometric_mean_interval(ratios: list[float]) -> tuple[float, float, float]:
    """The geometric mean of paired ratios and its 95% confidence interval (t distribution, on the logs)."""
    from scipy import stats

    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def verdict(low: float, high: float) -> str:
    if low >= TARGET:
        return f"meets the target of {TARGET}"
    if high < TARGET:
        return f"misses the target of {TARGET}"
    return f"cannot tell, at this run's noise, whether it meets the target of {TARGET}"


def compare(case: Case, rounds: int) -> None:
    fits: dict[str, list[Fit]] = {"engine": [], "plain": [], "free": []}
    first_metric: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        runner = Engine(case, Path(tmp))
        try:
            for i in range(rounds):
                # Each compared pair (engine and plain; plain and free) runs back to back, first one, then the other.
                for side in ("engine", "plain", "free") if i % 2 == 0 else ("free", "plain", "engine"):
                    if side == "engine":
                        fit, first = runner.fit()
                        first_metric.append(first)
                    else:
                        fit = plain_fit_in_child(case, determinism=side == "plain")
                    fits[side].append(fit)
            in_process = json.loads(
                _bench_child("callbacks", str(runner.home), str(runner.unclaimed_run()), str(rounds * 2))
            )
        finally:
            runner.close()

    def side(line: str, fits: list[Fit]) -> None:
        rates = ", ".join(f"{f.samples_per_s:,.0f}" for f in fits)
        epochs = ", ".join(f"{f.epoch_s:.2f}" for f in fits)
        best = max(f.samples_per_s for f in fits)
        print(f"  {line:28s}{best:10,.0f} samples/s   (rounds: {rates}; steady epochs, s: {epochs})")

    def ratio(line: str, ratios: list[float], extra: str = "", *, judged: bool = True) -> None:
        mean, low, high = geometric_mean_interval(ratios)
        print(f"  {line:28s}{mean:8.3f} (95% interval {low:.2f}-{high:.2f}){extra}")
        if judged:
            print(f"  {'':28s}{verdict(low, high)}")

    def whole(top: list[Fit], bottom: list[Fit]) -> list[float]:
        return [t.samples_per_s / b.samples_per_s for t, b in zip(top, bottom, strict=True)]

    def steady(top: list[Fit], bottom: list[Fit]) -> list[float]:
        return [b.epoch_s / t.epoch_s for t, b in zip(top, bottom, strict=True)]

    engine, plain, free = fits["engine"], fits["plain"], fits["free"]
    best = max(e.samples_per_s for e in engine) / max(p.samples_per_s for p in plain)
    print(f"{case.title}, {case.epochs} epochs, batch {case.batch}, CPU; {rounds} rounds")
    side("plain model.fit", plain)
    side("ModelDeck engine", engine)
    side("plain, no op determinism", free)
    ratio("engine / plain, whole fit", whole(engine, plain), f", {best:.3f} best vs best")
    ratio("engine / plain, steady epoch", steady(engine, plain))
    ratio("engine callbacks, in-process", in_process, " (epochs of two copies taking turns)")
    ratio("op determinism, whole fit", whole(plain, free), " (plain with / without; not judged)", judged=False)
    ratio("op determinism, steady", steady(plain, free), judged=False)
    first, first_median = min(first_metric), statistics.median(first_metric)
    print(f"  Start -> first metric       {first:8.1f} s, median {first_median:.1f} s   (worker already running)")


def main() -> None:
    if sys.argv[1:2] == ["plain"]:
        print(json.dumps(plain_fit(CASES[sys.argv[2]], determinism=sys.argv[3] == "determinism").__dict__))
        return
    if sys.argv[1:2] == ["callbacks"]:
        print(json.dumps(callbacks_in_one_process(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
        return
    args = sys.argv[1:]
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else None
    if rounds is not None and (rounds < 2 or rounds % 2):
        sys.exit(f"--rounds {rounds}: give an even number of rounds, 2 or more, so that each side goes first as often.")
    wanted = [a for a in args if a in CASES] or list(CASES)
    for name in wanted:
        compare(CASES[name], rounds or CASES[name].rounds)


if __name__ == "__main__":
    main()
