"""`modeldeck`: the scripting face of ModelDeck (DESIGN.md, "Command line").

Exit statuses are `EXIT_CODES` below, listed by `modeldeck --help`. Parsing the arguments imports almost
nothing: each command imports the wings it uses (pandas, SQLAlchemy and TensorFlow cost seconds), so `--help`
and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend import config
from backend.errors import BadInput, Busy, Forbidden, ModelDeckError, QualityGateBlocked, busy
from backend.i18n import LANGUAGES
from models.spec import SpecError, parse_sets
from models.tasks import TASKS, task_info, tasks_for_kind

if TYPE_CHECKING:
    from db import Store

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# -- exit status ------------------------------------------------------------------------------------------
EXIT_OK = 0
EXIT_BUG = 1
EXIT_BAD_INPUT = ModelDeckError.exit_code
EXIT_BLOCKED = QualityGateBlocked.exit_code
EXIT_RUN_FAILED = 4
EXIT_FORBIDDEN = Forbidden.exit_code
EXIT_BUSY = Busy.exit_code
EXIT_CTRL_C = 130
EXIT_CODES = {
    EXIT_OK: "success (a run started without --wait counts once it is queued)",
    EXIT_BUG: "a bug, shown with its traceback; for `ui`: one of its processes stopped on its own",
    EXIT_BAD_INPUT: "a user error (bad file, unknown column, bad value, usage); one line on stderr says how to fix it",
    EXIT_BLOCKED: "the quality gate blocked the dataset (data check; train and tune without --override)",
    EXIT_RUN_FAILED: "a run waited for with --wait ended without succeeding: failed, cancelled or interrupted",
    EXIT_FORBIDDEN: "the account's role may not do this (`modeldeck users list` shows the roles)",
    EXIT_BUSY: "the run history stayed locked by another process; nothing was written: try again",
    EXIT_CTRL_C: "stopped with Ctrl-C",
}
RUN_ENDED_BADLY = ("failed", "cancelled", "interrupted")


# -- output -----------------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, payload: Any, lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, default=str))
    else:
        print("\n".join(lines))


def _table(rows: list[list[Any]], header: list[str]) -> list[str]:
    cells = [header] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _version_json(dataset: Any, version: Any) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "version": version.hash[:12],
        "version_id": version.id,
        "kind": dataset.kind,
        "rows": version.rows,
        "columns": [c["name"] for c in version.columns],
        "target": version.target,
        "task": version.task,
    }


# -- commands ---------------------------------------------------------------------------------------
def cmd_samples(store: Store, args: argparse.Namespace) -> int:
    from backend import data

    skipped = data.add_samples(store, paths=config.paths()) if args.load else {}
    for name, exc in skipped.items():  # an optional sample's package is missing: the others load, the app starts
        print(f"warning: sample {name} skipped: {exc}", file=sys.stderr)
    payload = {
        "samples": [
            {
                "name": s.name,
                "title": s.title,
                "target": s.target,
                "task": s.task,
                "source": s.source,
                "licence": s.licence,
            }
            for s in data.SAMPLES.values()
        ],
        "skipped": [{"name": name, "reason": str(exc)} for name, exc in skipped.items()],
    }
    _emit(
        args,
        payload,
        _table(
            [[s.name, s.task, s.target, s.title] for s in data.SAMPLES.values()], ["NAME", "TASK", "TARGET", "TITLE"]
        ),
    )
    return 0


def cmd_data_add(store: Store, args: argparse.Namespace) -> int:
    from backend import data

    if args.images:
        table, archive = Path(args.source), Path(args.images)
        missing = [str(p) for p in (table, archive) if not p.is_file()]
        if missing:
            raise BadInput("error.cli.no_image_table", missing=missing[0])
        dataset, version = data.add_image_table(
            store,
            paths=config.paths(),
            table=table,
            table_filename=table.name,
            archive=archive,
            archive_filename=archive.name,
            name=args.name,
        )
    else:
        dataset, version = data.add_source(
            store, paths=config.paths(), source=args.source, name=args.name, target=args.target, task=args.task
        )
    if args.kind and args.kind != dataset.kind:
        dataset = data.set_kind(store, dataset=dataset, kind=args.kind)
    _emit(
        args,
        _version_json(dataset, version),
        [
            f"{dataset.name}: version {version.hash[:12]}, {version.rows} rows, {len(version.columns)} columns"
            + (f", target {version.target} ({version.task})" if version.target else "")
        ],
    )
    return 0


def cmd_data_list(store: Store, args: argparse.Namespace) -> int:
    items = [_version_json(d, store.list_versions(d.id)[-1]) for d in store.list_datasets()]
    _emit(
        args,
        {"datasets": items},
        _table(
            [[i["id"], i["name"], i["version"], i["rows"], i["target"], i["task"]] for i in items],
            ["ID", "NAME", "VERSION", "ROWS", "TARGET", "TASK"],
        ),
    )
    return 0


def cmd_data_show(store: Store, args: argparse.Namespace) -> int:
    from backend import data

    dataset, version = data.resolve(store, args.dataset)
    payload = _version_json(dataset, version) | {"column_details": version.columns, "source": dataset.source}
    lines = [f"{dataset.name} ({dataset.kind}), version {version.hash[:12]}, {version.rows} rows"]
    lines += _table(
        [[c["name"], c["kind"], c["missing"], c["unique"]] for c in version.columns],
        ["COLUMN", "KIND", "MISSING", "UNIQUE"],
    )
    _emit(args, payload, lines)
    return 0


def cmd_data_check(store: Store, args: argparse.Namespace) -> int:
    from backend import data, i18n, quality

    dataset, version = data.resolve(store, args.dataset)
    report = quality.check_version(
        store,
        version=version,
        target=args.target or version.target,
        meaning=args.meaning,
        progress=functools.partial(_progress, doing="comparing meanings", things="texts"),
    )
    checks = [
        {k: v for k, v in c.to_dict().items() if k not in ("key", "params", "alternatives")}
        | {"why": i18n.render("en", f"check.{c.id}.why"), "fix": i18n.render("en", f"check.{c.id}.fix")}
        for c in report.checks
    ]
    score = quality.score(report.checks)
    lines = [f"{'PASS' if report.passed else 'BLOCKED'}: {dataset.name} version {version.hash[:12]}, score {score}/100"]
    lines += [f"  [{'ok' if c['passed'] else c['severity']}] {c['id']}: {c['message']}" for c in checks]
    _emit(
        args,
        {
            "passed": report.passed,
            "score": score,
            "dataset": dataset.name,
            "version": version.hash[:12],
            "checks": checks,
        },
        lines,
    )
    return EXIT_OK if report.passed else EXIT_BLOCKED


def cmd_data_fix(store: Store, args: argparse.Namespace) -> int:
    from backend import data, quality

    dataset, version = data.resolve(store, args.dataset)
    new = quality.apply_check_fix(store, version=version, check_id=args.check)
    _emit(
        args,
        _version_json(dataset, new) | {"parent": version.hash[:12], "note": data.note_text(new)},
        [f"{dataset.name}: version {new.hash[:12]} (from {version.hash[:12]}): {data.note_text(new)}"],
    )
    return 0


def cmd_data_versions(store: Store, args: argparse.Namespace) -> int:
    from backend import data, quality

    dataset, _ = data.resolve(store, args.dataset)
    items = quality.lineage(store, dataset_id=dataset.id)
    _emit(
        args,
        {"dataset": dataset.name, "versions": items},
        _table(
            [[i["version"], i["parent"] or "", i["rows"], i["note"]] for i in items],
            ["VERSION", "PARENT", "ROWS", "WHAT CHANGED"],
        ),
    )
    return 0


def cmd_data_compare(store: Store, args: argparse.Namespace) -> int:
    from backend import data, quality

    dataset, _ = data.resolve(store, args.dataset)
    by_hash = {v.hash[:12]: v for v in store.list_versions(dataset.id)}
    missing = [v for v in (args.old, args.new) if v[:12] not in by_hash]
    if missing:
        raise BadInput("error.cli.no_version", missing=missing[0], dataset_name=dataset.name)
    diff = quality.compare_versions(by_hash[args.old[:12]], by_hash[args.new[:12]])
    _emit(args, diff, [f"{k}: {v}" for k, v in diff.items()])
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`--set KEY=VALUE` and `--epochs N` as spec overrides."""
    try:
        overrides: dict[str, Any] = parse_sets(args.set or [])
    except SpecError as exc:
        raise BadInput("error.spec", reason=str(exc)) from None
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    return overrides


def _waited(store: Store, args: argparse.Namespace, run: Any) -> Any:
    """With `--wait`, the run once it has finished (a worker is started for the wait when none is alive)."""
    from backend import jobs

    if not args.wait:
        return run
    with jobs.worker_if_needed(store, home=str(config.home())):
        return jobs.wait(store, run_id=run.id)


def _outcome(run: Any) -> int:
    """The exit status for the run a command started.

    A run that was waited for and did not succeed says so in one line on stderr, with where to read more.
    """
    if run.status not in RUN_ENDED_BADLY:  # succeeded, or queued without --wait
        return EXIT_OK
    reason = f" ({' '.join(run.error.split())})" if run.error else ""
    print(f"error: run {run.id} {run.status}{reason}. Details: `modeldeck runs show {run.id}`.", file=sys.stderr)
    return EXIT_RUN_FAILED


def cmd_train(store: Store, args: argparse.Namespace) -> int:
    from backend import data, jobs

    _, version = data.resolve(store, args.dataset)
    run = jobs.start_training(
        store,
        version=version,
        target=args.target,
        task=args.task,
        preset=args.preset,
        overrides=_overrides(args),
        override_reason=args.override,
    )
    run = _waited(store, args, run)
    payload = {"run_id": run.id, "status": run.status, "metrics": run.metrics, "task": run.task, "error": run.error}
    _emit(args, payload, [f"run {run.id}: {run.status}"] + [f"  {k}: {v}" for k, v in run.metrics.items()])
    return _outcome(run)


def cmd_tune(store: Store, args: argparse.Namespace) -> int:
    from backend import data, jobs

    _, version = data.resolve(store, args.dataset)
    overrides = _overrides(args)
    try:
        space = parse_sets(args.search or []) or None
    except SpecError as exc:
        raise BadInput("error.spec", reason=str(exc)) from None
    run = jobs.start_search(
        store,
        version=version,
        task=args.task,
        method=args.method,
        trials=args.trials,
        space=space,
        preset=args.preset,
        overrides=overrides,
        override_reason=args.override,
        parallel=args.parallel,
    )
    run = _waited(store, args, run)
    best = run.evaluation.get("search", {}).get("best_run")
    payload = {"run_id": run.id, "status": run.status, "metrics": run.metrics, "task": run.task, "best_run": best}
    _emit(args, payload, [f"search {run.id}: {run.status}" + (f", best trial: run {best}" if best else "")])
    return _outcome(run)


def cmd_runs_list(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    dataset_id = None
    if args.dataset:
        from backend import data  # pandas: only to resolve a dataset's name

        dataset_id = data.resolve(store, args.dataset)[0].id
    summaries, total = store.run_summaries(
        offset=args.offset,
        limit=args.limit,
        sort=args.sort,
        descending=not args.ascending,
        status=args.status,
        task=args.task,
        dataset_id=dataset_id,
    )
    items = [jobs.summarize(r) for r in summaries]
    shown = f"runs {args.offset + 1}-{args.offset + len(items)} of {total:,}" if items else f"no runs of {total:,}"
    rows = [
        [i["run_id"], i["dataset"], i["task"], i["status"], i["epochs_done"], _headline(i["metrics"])] for i in items
    ]
    _emit(
        args,
        {"runs": items, "total": total, "offset": args.offset, "limit": args.limit},
        _table(rows, ["RUN", "DATASET", "TASK", "STATUS", "EPOCHS", "METRIC"]) + [shown],
    )
    return 0


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("accuracy", "rmse", "ndcg_at_k", "perplexity"):
        if metrics.get(key) is not None:
            return f"{key}={metrics[key]:.4g}"
    return ""


def cmd_runs_show(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    info = jobs.describe(store, jobs.get_run(store, args.run))
    _emit(args, info, [f"{k}: {v}" for k, v in info.items() if k not in ("spec", "environment")])
    return 0


def cmd_runs_cancel(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    run = jobs.cancel(store, run_id=int(args.run))
    _emit(args, {"run_id": run.id, "status": run.status}, [f"run {run.id}: cancel requested ({run.status})"])
    return 0


def cmd_runs_resume(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    run = _waited(store, args, jobs.resume(store, run_id=int(args.run)))
    _emit(args, {"run_id": run.id, "status": run.status, "metrics": run.metrics}, [f"run {run.id}: {run.status}"])
    return _outcome(run)


def cmd_runs_again(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    run = _waited(store, args, jobs.run_again(store, run_id=jobs.get_run(store, args.run).id))
    _emit(args, {"run_id": run.id, "status": run.status, "metrics": run.metrics}, [f"run {run.id}: {run.status}"])
    return _outcome(run)


def _read_rows(args: argparse.Namespace) -> Any:
    import pandas as pd

    from backend import data

    if getattr(args, "row", None):
        try:
            row = json.loads(args.row)
        except json.JSONDecodeError as exc:
            raise BadInput("error.cli.bad_row_json", msg=exc.msg) from None
        return pd.DataFrame(row if isinstance(row, list) else [row])
    path = Path(args.input)
    if not path.is_file():
        raise BadInput("error.cli.no_csv_file", input=args.input)
    return data.read_table(path, path.name).frame


def _cost_matrix(given: str, classes: list[str]) -> list[list[float]]:
    """`--cost-matrix`: a CSV file (classes as header and first column) or JSON {actual: {decided: cost}}."""
    import pandas as pd

    try:
        if Path(given).is_file():
            table = pd.read_csv(given, index_col=0)
            table.index, table.columns = table.index.astype(str), table.columns.astype(str)
            cells = {a: {d: table.loc[a, d] for d in table.columns} for a in table.index}
        else:
            cells = json.loads(given)
            if not isinstance(cells, dict) or not all(isinstance(row, dict) for row in cells.values()):
                raise ValueError("expected an object of objects")
    except (ValueError, OSError) as exc:
        raise BadInput("error.cli.bad_cost_matrix", given=given, reason=str(exc).splitlines()[0]) from None
    unknown = sorted({*cells, *(d for row in cells.values() for d in row)} - set(classes))
    if unknown:
        raise BadInput("error.decide.matrix_classes", classes=", ".join(classes))
    return [[cells.get(a, {}).get(d, 0.0) for d in classes] for a in classes]


def cmd_decide(store: Store, args: argparse.Namespace) -> int:
    """Choose how a classifier decides (a threshold, or a cost matrix); store it and put it in the export."""
    from backend import jobs

    binary = (args.value_tp, args.cost_fp, args.cost_fn)
    by_matrix = args.cost_matrix is not None and binary == (None, None, None)
    if not by_matrix and (args.cost_matrix is not None or None in binary):
        raise BadInput("error.cli.decide_how")
    if by_matrix:
        run = jobs.get_run(store, args.run)
        classes = run.evaluation.get("classes", [])
        if len(classes) < 3:
            raise BadInput("error.decide.not_multiclass", run_id=run.id, classes=len(classes))
        matrix = jobs.decision_cost_matrix(classes, _cost_matrix(args.cost_matrix, classes), args.currency)
        chosen = jobs.decide_costs(store, run.id, matrix, reason=args.why)
        money = f" {matrix.currency}" if matrix.currency else ""
        lines = [
            f"run {chosen['run_id']}: decides the class of least expected cost ({len(classes)} classes)",
            f"  cost per 1,000 test cases: {chosen['expected_cost']:,.2f}{money}"
            f" (the most probable class: {chosen['plain_cost']:,.2f}{money}; saved {chosen['saving']:,.2f}{money})",
            f"  stored with model {chosen['model_name']} version {chosen['model_version']}:"
            " its export returns `decision` and `expected_cost`",
        ]
        _emit(args, chosen, lines)
        return 0
    costs = jobs.decision_costs(args.value_tp, args.cost_fp, args.cost_fn, args.currency)
    chosen = jobs.decide(store, args.run, costs, threshold=args.threshold, reason=args.why)
    money = f"{chosen['expected_profit']:,.2f} {costs.currency}".rstrip()
    counts = ", ".join(f"{k.upper()} {v}" for k, v in chosen["confusion"].items())
    roi = "—" if chosen["roi"] is None else f"{chosen['roi']:.2f}"
    lines = [
        f"run {chosen['run_id']}: {chosen['positive']!r} when its probability is at least {chosen['threshold']:.4f}",
        f"  expected profit per 1,000 cases: {money} (ROI {roi})",
        f"  on the test rows: {counts}",
        f"  stored with model {chosen['model_name']} version {chosen['model_version']}; its export returns `decision`",
    ]
    _emit(args, chosen, lines)
    return 0


def cmd_eval(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs, serving

    run, export_dir = jobs.exported_model(store, args.run)
    metrics = run.metrics
    if args.input:
        predictors: dict[str, Any] = {}  # a recommender is scored through two signatures

        def predict(rows: Any, signature: str = "serving_default") -> Any:
            if signature not in predictors:
                predictors[signature] = serving.Predictor(export_dir, signature)
            return predictors[signature].raw(rows)

        rows = _read_rows(args)
        metrics = jobs.score_labelled(run, rows, predict=predict, source=args.input, store=store, by=args.by)
    elif args.by:
        metrics = metrics | {"segments": jobs.segment_metrics(store, run, args.by)}
    if args.tolerance is not None:
        tolerance, relative = jobs.parse_tolerance(args.tolerance)
        metrics = metrics | {"tolerance_band": jobs.tolerance_band(run, tolerance, relative=relative)}
    segments = metrics.pop("segments", None)
    lines = [f"run {run.id} ({run.task})"]
    for key, value in metrics.items():  # a recommender's baselines are a group of their own
        nested = value.items() if isinstance(value, dict) else []
        lines += [f"  {key}:" if nested else f"  {key}: {value}"] + [f"    {k}: {v}" for k, v in nested]
    if segments is not None:
        lines += _segment_lines(segments)
        metrics["segments"] = segments
    _emit(args, {"run_id": run.id, "task": run.task, "metrics": metrics}, lines)
    return 0


def _segment_lines(found: dict[str, Any]) -> list[str]:
    """The segments as a table, the worst first: each metric with its 95% interval."""
    names = [k for k in found["overall"] if k != "rows"]
    lines = [f"  by {found['column']} (worst {found['metric']} first; 95% bootstrap intervals):"]
    for entry in found["segments"]:
        cells = []
        for name in names:
            value, interval = entry.get(name), entry["interval"].get(name)
            shown = "-" if value is None else f"{value:.3f}"
            cells.append(f"{name} {shown}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""))
        lines.append(f"    {entry['segment']} ({entry['rows']} rows): " + ", ".join(cells))
    return lines


def _prediction_rows(run: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The rows to predict and the signature to run: images from files, generation settings when given."""
    import pandas as pd

    from backend import data

    if run.task == "image-classification":
        if not args.input:
            raise BadInput("error.cli.images_needed")
        found = data.images_to_predict(Path(args.input))
        return pd.DataFrame({"file": [n for n, _ in found], "image": [b for _, b in found]}), "serving_default"
    frame = _read_rows(args)
    sampling = task_info(run.task).sampling
    if sampling and set(frame.columns) & {"max_new_tokens", *sampling}:
        defaults = dict(sampling) | {"max_new_tokens": run.spec.get("max_new_tokens", 200)}
        for name, value in defaults.items():
            frame[name] = frame[name].fillna(value) if name in frame.columns else value
        return frame, "generate"
    return frame, "serving_default"


def _progress(done: int, total: int, *, doing: str = "scoring", things: str = "rows") -> None:
    """A progress bar on stderr, redrawn in place (stdout stays the result's)."""
    filled = 30 * done // max(total, 1)
    bar = f"\r{doing} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} {things}"
    print(bar, end="\n" if done >= total else "", file=sys.stderr, flush=True)


def _score_file(run: Any, export_dir: Path, args: argparse.Namespace) -> int:
    """`predict --output`: every row scored in batches into a formula-safe CSV or a Parquet file."""
    from backend import scoring, serving

    output = Path(args.output)
    fmt = scoring.check_output(output)  # before any row is read or scored
    frame, signature = _prediction_rows(run, args)
    scored = scoring.score(frame, predict=serving.Predictor(export_dir, signature).raw, on_progress=_progress)
    size = scoring.write(scored.frame, output)
    payload = {
        "run_id": run.id,
        "rows": scored.rows,
        "output": str(output.resolve()),
        "format": fmt,
        "bytes": size,
        "seconds": round(scored.seconds, 3),
        "columns": [str(c) for c in scored.frame.columns],
    }
    _emit(args, payload, [f"{scored.rows:,} rows scored in {scored.seconds:.1f} s: {output} ({fmt}, {size:,} bytes)"])
    return 0


def cmd_predict(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs, serving

    run, export_dir = jobs.exported_model(store, args.run)
    if args.output:
        return _score_file(run, export_dir, args)
    frame, signature = _prediction_rows(run, args)
    predictions = serving.Predictor(export_dir, signature).predict(frame)
    if "file" in frame.columns:
        predictions = [{"file": name, **p} for name, p in zip(frame["file"], predictions, strict=True)]
    _emit(args, {"predictions": predictions}, [json.dumps(p, ensure_ascii=False) for p in predictions])
    return 0


def cmd_export(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs

    if args.serving_config:
        return _serving_config(store, args)
    if not args.run or not args.out:
        raise BadInput("error.cli.export_usage")
    run, export_dir = jobs.exported_model(store, args.run)
    target = Path(args.out) / str(run.model_name) / str(run.model_version)
    if args.format == "savedmodel":
        if target.exists():
            raise BadInput("error.cli.already_exists", target=target)
        shutil.copytree(export_dir, target)
    else:  # made and checked against the SavedModel on test rows; refused with the converter's reason
        check = next(c for c in jobs.check_formats(store, run.id) if c.format == args.format)
        made = jobs.format_file(run, check)
        if made is None:
            raise BadInput("error.export.refused", format=args.format, reason=check.refused)
        target.mkdir(parents=True, exist_ok=True)
        target = target / made.name
        shutil.copyfile(made, target)
        payload = {"run_id": run.id, "path": str(target), "format": args.format, "check": check.to_dict()}
        difference = f"largest difference {check.max_difference:.3g} on {check.rows} test rows"
        _emit(args, payload, [f"{target} ({check.size_bytes:,} bytes, {difference})"])
        return 0
    _emit(args, {"run_id": run.id, "path": str(target), "format": args.format}, [str(target)])
    return 0


def _serving_config(store: Store, args: argparse.Namespace) -> int:
    """`export --serving-config DIR`: every exported model and a models.config, for a stock TensorFlow Serving."""
    from backend import jobs

    written = jobs.serving_folder(store, out=Path(args.serving_config), mount=args.mount)
    payload = {
        "folder": str(written.folder),
        "models": written.models,
        "config": str(written.folder / "models.config"),
        "command": written.command,
    }
    _emit(args, payload, [written.config, written.command])
    return 0


def cmd_report(store: Store, args: argparse.Namespace) -> int:
    """A finished run written up to hand over: one self-contained HTML file, or a PDF of it (`--out *.pdf`)."""
    from backend import jobs

    out = Path(args.out)
    run = jobs.get_run(store, args.run)
    page = jobs.report_html(store, run.id, lang=args.lang)
    fmt = "pdf" if out.suffix.lower() == ".pdf" else "html"
    content = jobs.print_pdf(page) if fmt == "pdf" else page.encode("utf-8")
    try:
        out.write_bytes(content)
    except OSError as exc:
        raise BadInput("report.error.cannot_write", path=str(out), reason=exc.strerror or str(exc)) from None
    payload = {"run_id": run.id, "path": str(out.resolve()), "format": fmt, "bytes": len(content)}
    _emit(args, payload, [f"{out} ({fmt.upper()}, {len(content):,} bytes)"])
    return 0


def _stages_text(stages: dict[str, int]) -> str:
    return ", ".join(f"{stage} v{version}" for stage, version in stages.items()) or "-"


def _change_line(change: dict[str, Any]) -> str:
    action = "promoted to" if change["action"] == "promote" else "rolled back, now"
    why = f": {change['why']}" if change["why"] else ""
    return f"{change['at']}  {change['model']} v{change['version']} {action} {change['stage']} by {change['by']}{why}"


def cmd_models_list(store: Store, args: argparse.Namespace) -> int:
    """The model registry: each model's task, data, versions and stages."""
    from backend import serving

    found = serving.registry_models(store)
    rows = [[m.name, m.task, m.dataset, len(m.versions), m.versions[0], _stages_text(m.stages)] for m in found]
    header = ["MODEL", "TASK", "DATASET", "VERSIONS", "LATEST", "STAGES"]
    _emit(args, {"models": [m.to_dict() for m in found]}, _table(rows, header))
    return 0


def cmd_models_show(store: Store, args: argparse.Namespace) -> int:
    from backend import serving

    detail = serving.registry_model(store, args.model).to_dict()
    lines = [f"{detail['name']} ({detail['task']}, dataset {detail['dataset']}): {_stages_text(detail['stages'])}"]
    rows = [[v["version"], v["run_id"], ", ".join(v["stages"]), v["created_at"]] for v in detail["versions"]]
    lines += _table(rows, ["VERSION", "RUN", "STAGES", "CREATED"])
    lines += ["history:"] + [f"  {_change_line(c)}" for c in detail["history"]] if detail["history"] else []
    _emit(args, detail, lines)
    return 0


def cmd_models_promote(store: Store, args: argparse.Namespace) -> int:
    """Give a model's version a stage; a running inference server answers the stage's label with it at once."""
    from backend import serving

    change = serving.promote(store, args.model, args.version, stage=args.stage, reason=args.why, assigned_by=args.by)
    payload = serving.change_dict(change)
    _emit(args, payload, [_change_line(payload)])
    return 0


def cmd_models_rollback(store: Store, args: argparse.Namespace) -> int:
    """Give a stage back to the version that held it before."""
    from backend import serving

    change = serving.rollback(store, args.model, stage=args.stage, reason=args.why, assigned_by=args.by)
    payload = serving.change_dict(change)
    _emit(args, payload, [_change_line(payload)])
    return 0


def _monitor_lines(figures: Any, threshold: float) -> list[str]:
    scope = f"version {figures.version}" if figures.version is not None else "all versions"
    live = f"; production v{figures.production}" if figures.production is not None else ""
    if not figures.logged:
        return [f"{figures.model} ({scope}{live}): no request logged yet (the inference server logs those it answers)."]
    lines = [
        f"{figures.model} ({scope}{live}): {figures.requests} requests, {figures.errors} errors,"
        f" latency p50 {figures.p50_ms:.1f} ms, p95 {figures.p95_ms:.1f} ms"
    ]
    rows = [
        [b.start.isoformat(sep=" "), b.requests, b.errors, f"{b.p50_ms:.1f}", f"{b.p95_ms:.1f}"]
        for b in figures.timeline
    ]
    lines += [f"per {figures.bucket}:"] + _table(rows, ["START", "REQUESTS", "ERRORS", "P50 MS", "P95 MS"])
    if figures.predictions is not None:
        shown = zip(figures.predictions.labels, figures.predictions.counts, strict=True)
        lines.append("predictions: " + ", ".join(f"{label} {count}" for label, count in shown if count))
    if figures.drift:
        lines.append(f"input drift against the data of version {figures.drift_version} (run {figures.drift_run}):")
        drift = [[f.feature, f.kind, f"{f.psi:.3f}", f.level, f.rows] for f in figures.drift]
        lines += _table(drift, ["FEATURE", "KIND", "PSI", "READING", "EXAMPLES"])
    if figures.alert:
        drifted = ", ".join(f.feature for f in figures.drift if f.level == "drift")
        lines.append(f"ALERT: input drift (PSI over {threshold}) in {drifted}")
    return lines


def cmd_monitor(store: Store, args: argparse.Namespace) -> int:
    """A model's traffic, latency, predictions and input drift, from the inference server's request log."""
    from backend import serving

    figures = serving.monitor(store, args.model, version=args.version)
    _emit(args, figures.to_dict(), _monitor_lines(figures, serving.DRIFT_ALERT))
    return 0


def cmd_worker(store: Store, args: argparse.Namespace) -> int:
    from backend import jobs, logs

    logs.configure("worker")
    jobs.serve_forever(
        store,
        database_url=config.database_url(),
        home=config.home(),
        until_idle=args.until_idle,
        resume_interrupted=args.resume_interrupted,
        executor=config.executor(),
    )
    return 0


def cmd_serve(_store: Store, args: argparse.Namespace) -> int:
    from backend import logs, serving

    logs.configure("serve")
    limits = {
        name: getattr(args, name)
        for name in ("max_body_bytes", "max_rows", "request_timeout", "require_keys")
        if getattr(args, name) is not None  # the server's own defaults otherwise
    }
    serving.serve(home=config.home(), rest_port=args.port, grpc_port=args.grpc_port, host=args.host, **limits)
    return 0


def _password(args: argparse.Namespace) -> str:
    """A new password: from stdin with --password-stdin (scripts), else asked twice on the terminal."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first, second = getpass.getpass("password: "), getpass.getpass("again: ")
    if first != second:
        raise BadInput("error.auth.passwords_differ")
    return first


def cmd_users_add(store: Store, args: argparse.Namespace) -> int:
    """A local account for the dashboard's sign-in, with a role."""
    from backend import auth

    made = auth.add_user(store, args.name, role=args.role, password=_password(args))
    _emit(args, {"name": made.name, "role": made.role}, [f"account {made.name!r} ({made.role}) added"])
    return 0


def cmd_users_list(store: Store, args: argparse.Namespace) -> int:
    from backend import auth

    found = auth.users(store)
    rows = [[u.name, u.role, u.created_at, u.disabled_at or "enabled"] for u in found]
    payload = {"users": [{"name": u.name, "role": u.role, "disabled": u.disabled_at is not None} for u in found]}
    _emit(args, payload, _table(rows, ["NAME", "ROLE", "CREATED", "DISABLED"]))
    return 0


def cmd_users_role(store: Store, args: argparse.Namespace) -> int:
    from backend import auth

    changed = auth.set_role(store, args.name, args.role)
    _emit(args, {"name": changed.name, "role": changed.role}, [f"{changed.name} is now {changed.role}"])
    return 0


def cmd_users_password(store: Store, args: argparse.Namespace) -> int:
    from backend import auth

    changed = auth.set_password(store, args.name, _password(args))
    _emit(args, {"name": changed.name}, [f"password of {changed.name} changed; its sessions ended"])
    return 0


def cmd_users_disable(store: Store, args: argparse.Namespace) -> int:
    from backend import auth

    changed = auth.disable(store, args.name)
    _emit(args, {"name": changed.name, "disabled": True}, [f"{changed.name} disabled; its sessions ended"])
    return 0


def cmd_audit(store: Store, args: argparse.Namespace) -> int:
    """Every change, the latest first; `--csv FILE` writes the whole log."""
    from backend import auth

    if args.csv:
        Path(args.csv).write_bytes(auth.log_csv(store))
        _emit(args, {"written": args.csv}, [f"audit log written to {args.csv}"])
        return 0
    found = auth.log(store, limit=args.limit)
    rows = [[e.at.isoformat(sep=" ", timespec="seconds"), e.actor, e.role, e.action, e.target, e.source] for e in found]
    payload = {
        "entries": [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "target": e.target,
                "source": e.source,
                "detail": e.detail,
            }
            for e in found
        ]
    }
    _emit(args, payload, _table(rows, ["AT", "WHO", "ROLE", "ACTION", "WHAT", "FROM"]))
    return 0


def cmd_delete(store: Store, args: argparse.Namespace) -> int:
    """What deleting would take with it; with --yes, delete it (admins)."""
    from backend import jobs

    act = jobs.delete if args.yes else jobs.deletion_plan
    found = act(store, args.kind, args.name)
    payload = {
        "kind": found.kind,
        "name": found.name,
        "deleted": args.yes,
        "runs": found.runs,
        "models": found.models,
        "use_cases": found.use_cases,
        "folders": [str(f) for f in found.folders],
        "staged": found.staged,
        "active": found.active,
    }
    head = f"deleted {found.kind} {found.name}" if args.yes else f"deleting {found.kind} {found.name} would take:"
    lines = [head, f"  runs: {', '.join(map(str, found.runs)) or 'none'}"]
    lines += [f"  model versions: {', '.join(found.models) or 'none'}"]
    lines += [f"  use cases: {', '.join(found.use_cases) or 'none'}"]
    lines += [f"  folders: {len(found.folders)}"]
    if not args.yes:
        lines += [f"  blocked: {', '.join(found.staged)} hold a stage"] if found.staged else []
        lines += [f"  blocked: runs {found.active} are queued or running"] if found.active else []
        lines += ["run again with --yes to delete"] if not found.blocked else []
    _emit(args, payload, lines)
    return 0


def cmd_keys_create(store: Store, args: argparse.Namespace) -> int:
    """A new API key for the inference server, printed once: only its digest is kept."""
    from backend import serving

    made, key = serving.create_key(store, args.name, created_by=args.by)
    lines = [key, f"(key {made.name!r}: shown this once; send it as `Authorization: Bearer KEY`)"]
    _emit(args, {"name": made.name, "key": key, "prefix": made.prefix}, lines)
    return 0


def cmd_keys_list(store: Store, args: argparse.Namespace) -> int:
    from backend import serving

    found = serving.api_keys(store)
    rows = [[k.name, k.prefix + "…", k.created_by, k.created_at, k.revoked_at or "live"] for k in found]
    payload = {
        "keys": [
            {
                "name": k.name,
                "prefix": k.prefix,
                "created_by": k.created_by,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in found
        ]
    }
    _emit(args, payload, _table(rows, ["NAME", "KEY", "BY", "CREATED", "REVOKED"]))
    return 0


def cmd_keys_revoke(store: Store, args: argparse.Namespace) -> int:
    """Revoke a key: a running server refuses it within a second."""
    from backend import serving

    revoked = serving.revoke_key(store, args.name)
    _emit(args, {"name": revoked.name, "revoked_at": str(revoked.revoked_at)}, [f"key {revoked.name!r} revoked"])
    return 0


def cmd_ui(_store: Store, args: argparse.Namespace) -> int:
    """Dashboard, worker and inference servers together; Ctrl-C stops them all, a crashed one is restarted."""
    from backend import logs, ui

    logs.configure("ui")
    kept_cpus = ui.serving_cpus()  # a bad value is said before anything starts
    print(f"ModelDeck: http://localhost:{args.port}  (inference server on :{args.serve_port}, gRPC :{args.grpc_port})")
    return ui.run(
        home=config.home(),
        port=args.port,
        serve_port=args.serve_port,
        grpc_port=args.grpc_port,
        host=args.host,
        scoring_port=args.scoring_port,
        kept_cpus=kept_cpus,
    )


DATASET_HELP = "a dataset's name or id (`modeldeck data list`)"
RUN_HELP = "a run's id (`modeldeck runs list`)"
MODEL_HELP = "a model's name (`modeldeck models list`)"


# -- parser -----------------------------------------------------------------------------------------
class _Version(argparse.Action):
    """`--version`, reading the installed package's metadata only when asked (importlib.metadata: 20 ms a run)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import version

        print(f"modeldeck {version('modeldeck')}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    exit_codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    p = argparse.ArgumentParser(
        prog="modeldeck",
        description="From a dataset to a working model demo.",
        epilog=f"exit status:\n{exit_codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    p.add_argument("--home", help="data folder (default: $MODELDECK_HOME or ./.modeldeck)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(parent: Any, name: str, func: Any, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        cmd = parent.add_parser(name, help=help)
        cmd.set_defaults(func=func)
        if json_flag:
            cmd.add_argument("--json", action="store_true", help="print one JSON object")
        return cmd

    ui = command(sub, "ui", cmd_ui, "dashboard + worker + inference server", json_flag=False)
    ui.add_argument("--port", type=int, default=8501)
    ui.add_argument("--serve-port", type=int, default=config.DEFAULT_REST_PORT)
    ui.add_argument("--grpc-port", type=int, default=config.DEFAULT_GRPC_PORT)
    ui.add_argument("--host", default="127.0.0.1", help="interface for the dashboard and server (0.0.0.0: all)")
    ui.add_argument(
        "--scoring-port",
        type=int,
        default=config.DEFAULT_SCORING_PORT,
        help="loopback port of a second inference server for the dashboard's file scoring (0: none, use the first)",
    )
    worker = command(sub, "worker", cmd_worker, "run training jobs", json_flag=False)
    worker.add_argument("--until-idle", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--resume-interrupted", action="store_true", help="queue again the runs a dead worker left (ui's worker does)"
    )
    serve = command(sub, "serve", cmd_serve, "inference server (TensorFlow Serving REST + gRPC)", json_flag=False)
    serve.add_argument("--port", type=int, default=config.DEFAULT_REST_PORT)
    serve.add_argument("--grpc-port", type=int, default=config.DEFAULT_GRPC_PORT)
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all; then keys are asked)")
    serve.add_argument("--max-body-bytes", type=int, help="larger REST bodies get 413 (default 64 MiB)")
    serve.add_argument("--max-rows", type=int, help="more rows per predict request get 400 (default 10,000)")
    serve.add_argument("--request-timeout", type=float, help="seconds before a REST request gets 408 (default 30)")
    serve.add_argument(
        "--require-keys",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every request needs an API key (default: only when --host is not loopback)",
    )
    key_cmds = sub.add_parser("keys", help="the inference server's API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create_key = command(key_cmds, "create", cmd_keys_create, "make a key (printed once)")
    create_key.add_argument("name", help="what the key is for, e.g. 'crm-integration'")
    create_key.add_argument("--by", help="who (default: your user name)")
    command(key_cmds, "list", cmd_keys_list, "keys, live and revoked (never the keys themselves)")
    command(key_cmds, "revoke", cmd_keys_revoke, "revoke a key").add_argument("name", help="the key's name")
    delete = command(sub, "delete", cmd_delete, "delete a dataset, run or model: shows what goes; --yes deletes")
    delete.add_argument("kind", choices=["dataset", "run", "model"])
    delete.add_argument("name", help="the dataset's name or id, the run's id, or the model's name")
    delete.add_argument("--yes", action="store_true", help="delete (without it, only show what would go)")
    user_cmds = sub.add_parser("users", help="local accounts for the dashboard's sign-in").add_subparsers(
        dest="users_command", required=True
    )
    roles = ["viewer", "editor", "admin"]
    add_user = command(user_cmds, "add", cmd_users_add, "add an account (asks for its password)")
    add_user.add_argument("name")
    add_user.add_argument("--role", required=True, choices=roles)
    command(user_cmds, "list", cmd_users_list, "accounts and their roles")
    role = command(user_cmds, "role", cmd_users_role, "change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=roles)
    password = command(user_cmds, "password", cmd_users_password, "set an account's password (ends its sessions)")
    password.add_argument("name")
    for needs_password in (add_user, password):
        needs_password.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    command(user_cmds, "disable", cmd_users_disable, "disable an account (ends its sessions)").add_argument("name")
    audit = command(sub, "audit", cmd_audit, "every change: who, what, when, from where (admins)")
    audit.add_argument("--limit", type=int, default=50, help="the latest N changes (default 50)")
    audit.add_argument("--csv", help="write the whole log to this CSV file")
    samples = command(sub, "samples", cmd_samples, "built-in sample datasets")
    samples.add_argument("--load", action="store_true", help="add every sample to the dataset list")

    data_cmds = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    add = command(data_cmds, "add", cmd_data_add, "add a file or sample:NAME")
    add.add_argument("source", help="a file (CSV, TSV, Excel, JSON Lines, Parquet, ZIP) or sample:NAME")
    add.add_argument("--name")
    add.add_argument("--target")
    add.add_argument("--task", choices=["auto", *tasks_for_kind("tabular")])  # what a table's target can be
    add.add_argument("--kind", choices=["tabular", "text", "ratings"], help="override the inferred kind of data")
    add.add_argument("--images", metavar="ZIP", help="SOURCE is a table of image paths and labels; ZIP holds the files")
    command(data_cmds, "list", cmd_data_list, "list datasets")
    command(data_cmds, "show", cmd_data_show, "show a dataset").add_argument("dataset", help=DATASET_HELP)
    check = command(data_cmds, "check", cmd_data_check, f"quality report (exit {EXIT_BLOCKED} when blocked)")
    check.add_argument("dataset", help=DATASET_HELP)
    check.add_argument("--target")
    check.add_argument(
        "--meaning",
        action="store_true",
        help="also find texts that say the same in other words (the pretrained text model; slow on a CPU)",
    )
    fix = command(data_cmds, "fix", cmd_data_fix, "apply a check's one-click fix, as a new version")
    fix.add_argument("dataset", help=DATASET_HELP)
    fix.add_argument("--check", required=True, metavar="ID", help="the check id, e.g. duplicate_rows")
    command(data_cmds, "versions", cmd_data_versions, "versions with their lineage").add_argument(
        "dataset", help=DATASET_HELP
    )
    compare = command(data_cmds, "compare", cmd_data_compare, "rows and columns changed between two versions")
    compare.add_argument("dataset", help=DATASET_HELP)
    compare.add_argument("old", help="the older version's hash (its first 12 characters will do)")
    compare.add_argument("new", help="the newer version's hash")

    train = command(sub, "train", cmd_train, "train a model")
    train.add_argument("dataset", help=DATASET_HELP)
    train.add_argument("--target")
    train.add_argument("--task", choices=["auto", *TASKS])
    train.add_argument("--preset", default="balanced", choices=["fast", "balanced", "thorough"])
    train.add_argument("--epochs", type=int)
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="a hyperparameter, e.g. dropout=0.2")
    train.add_argument("--override", metavar="REASON", help="train despite a quality blocker, for this reason")
    train.add_argument(
        "--wait", action="store_true", help=f"wait for the run to finish (exit {EXIT_RUN_FAILED} unless it succeeds)"
    )

    tune = command(sub, "tune", cmd_tune, "search hyperparameters: every trial is a run")
    tune.add_argument("dataset", help=DATASET_HELP)
    tune.add_argument("--task", choices=["auto", *TASKS])
    tune.add_argument("--method", default="random", choices=["random", "bayesian"])
    tune.add_argument("--trials", type=int, default=8)
    tune.add_argument(
        "--parallel", type=int, default=0, metavar="N", help="trials at once on a Ray cluster (0: as many as it holds)"
    )
    tune.add_argument("--preset", default="balanced", choices=["fast", "balanced", "thorough"])
    tune.add_argument("--epochs", type=int)
    tune.add_argument("--set", action="append", metavar="KEY=VALUE", help="a fixed hyperparameter")
    tune.add_argument(
        "--search", action="append", metavar="KEY=LOW:HIGH|A|B", help="a searched one, e.g. learning_rate=0.0001:0.01"
    )
    tune.add_argument("--override", metavar="REASON", help="search despite a quality blocker, for this reason")
    tune.add_argument("--wait", action="store_true", help="wait for the search to finish")

    run_cmds = sub.add_parser("runs", help="run history").add_subparsers(dest="runs_command", required=True)
    listing = command(run_cmds, "list", cmd_runs_list, "list runs, newest first (a page at a time)")
    listing.add_argument("--limit", type=int, default=50, help="runs per page (default 50)")
    listing.add_argument("--offset", type=int, default=0, help="runs to skip (the page's start)")
    listing.add_argument(
        "--sort", default="id", help="id, created_at, duration_s, epochs_done, status, task or a metric"
    )
    listing.add_argument("--ascending", action="store_true", help="smallest first")
    listing.add_argument("--status", help="e.g. succeeded, failed, running")
    listing.add_argument("--task", help="e.g. classification")
    listing.add_argument("--dataset", help=DATASET_HELP)
    command(run_cmds, "show", cmd_runs_show, "show a run").add_argument("run", help=RUN_HELP)
    command(run_cmds, "cancel", cmd_runs_cancel, "cancel a run").add_argument("run", help=RUN_HELP)
    resume = command(run_cmds, "resume", cmd_runs_resume, "resume an interrupted run")
    resume.add_argument("run", help=RUN_HELP)
    resume.add_argument("--wait", action="store_true")
    again = command(run_cmds, "again", cmd_runs_again, "train again with the same data, task and spec")
    again.add_argument("run", help=RUN_HELP)
    again.add_argument("--wait", action="store_true")

    decide = command(
        sub, "decide", cmd_decide, "how a classifier decides: a threshold on business values, or a cost matrix"
    )
    decide.add_argument("run", help=RUN_HELP)
    decide.add_argument("--value-tp", type=float, help="two classes: gained by acting on a true positive")
    decide.add_argument("--cost-fp", type=float, help="two classes: lost by acting on a false positive")
    decide.add_argument("--cost-fn", type=float, help="two classes: lost by missing a positive")
    decide.add_argument(
        "--cost-matrix",
        metavar="CSV|JSON",
        help="three or more classes: cost[actual][decided], a CSV with the classes as header and first column,"
        ' or JSON like {"a": {"b": 5}} (cells not given cost 0)',
    )
    decide.add_argument("--currency", default="", help="e.g. EUR (shown with the amounts)")
    decide.add_argument(
        "--threshold", type=float, help="this threshold (default: the most profitable on the test rows)"
    )
    decide.add_argument("--why", default="", help="why this threshold, for the record")
    ev = command(sub, "eval", cmd_eval, "metrics on the test split, or on --input")
    ev.add_argument("run", help=RUN_HELP)
    ev.add_argument("--input", help="a labelled CSV file (for a recommender: later ratings, by user and item)")
    ev.add_argument("--by", metavar="COLUMN", help="every metric per segment of this column, the worst first")
    ev.add_argument(
        "--tolerance", metavar="T|P%", help="a regression: the share of test predictions within ±T, or ±P%% of truth"
    )
    pr = command(sub, "predict", cmd_predict, "predict rows with a run's model")
    pr.add_argument("run", help=RUN_HELP)
    rows = pr.add_mutually_exclusive_group(required=True)
    rows.add_argument("--input", help="a CSV file; for an image model an image, a folder of images or a ZIP")
    rows.add_argument("--row", help="one row (or a list of rows) as JSON")
    pr.add_argument(
        "--output",
        metavar="FILE.csv|FILE.parquet",
        help="score every row into this file: the input columns, the prediction, its probability and the decision"
        " (a CSV is formula-safe: a cell starting with = + - @ is written with a leading ')",
    )
    ex = command(sub, "export", cmd_export, "copy a run's model out, or every model for TensorFlow Serving")
    ex.add_argument("run", nargs="?", help=RUN_HELP)
    out = ex.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="a folder: the model lands in OUT/<name>/<version>/")
    out.add_argument(
        "--serving-config", metavar="DIR", help="every exported model into DIR/<name>/<version>/, and DIR/models.config"
    )
    ex.add_argument("--format", choices=["savedmodel", "tflite", "tflite-int8"], default="savedmodel")
    ex.add_argument("--mount", default="/models", help="where TensorFlow Serving's container sees DIR")
    report = command(sub, "report", cmd_report, "a run's report to hand over: one HTML file, or a PDF of it")
    report.add_argument("run", help=RUN_HELP)
    report.add_argument("--out", required=True, help="report.html, or report.pdf (printed by headless Chromium)")
    report.add_argument("--lang", choices=LANGUAGES, default="en", help="the report's language (default: en)")

    model_cmds = sub.add_parser("models", help="the model registry: versions and stages").add_subparsers(
        dest="models_command", required=True
    )
    command(model_cmds, "list", cmd_models_list, "models with their versions and stages")
    command(model_cmds, "show", cmd_models_show, "a model's versions and stage history").add_argument(
        "model", help=MODEL_HELP
    )
    promote = command(model_cmds, "promote", cmd_models_promote, "give a version a stage (staging, production)")
    promote.add_argument("model", help=MODEL_HELP)
    promote.add_argument("version", type=int, help="the version's number (`modeldeck models show MODEL`)")
    rollback = command(model_cmds, "rollback", cmd_models_rollback, "give a stage back to its previous version")
    rollback.add_argument("model", help=MODEL_HELP)
    for stage_cmd in (promote, rollback):
        stage_cmd.add_argument("--stage", required=True, help="production or staging")
        stage_cmd.add_argument("--why", default="", help="why, for the stage history")
        stage_cmd.add_argument("--by", help="who (default: your user name)")
    monitor = command(sub, "monitor", cmd_monitor, "a model's traffic, latency, predictions and input drift")
    monitor.add_argument("model", help=MODEL_HELP)
    monitor.add_argument("--version", type=int, help="one version's requests (default: every version's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.home:
        os.environ["MODELDECK_HOME"] = str(Path(args.home).resolve())
    from db import DatabaseBusy, open_store

    try:
        store = open_store(config.database_url())
        try:
            return int(args.func(store, args))
        finally:
            store.close()
    except ModelDeckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except DatabaseBusy as exc:
        said = busy(exc)
        assert said is not None
        print(f"error: {said}", file=sys.stderr)
        return said.exit_code
    except KeyboardInterrupt:
        return EXIT_CTRL_C


def run() -> None:
    """The `modeldeck` command: `main`, then out of the process without the interpreter's teardown.

    Freeing a large table object by object and unloading pandas, pyarrow and YDF took 0.17 s after `data check`
    of a 200,000 x 100 table had printed its answer; the operating system takes the memory back at once. `main`
    closes the database and every file; output and logs are flushed here. A command that leaves a thread or a
    child process behind exits the usual way, which waits for them, and so does one run under a profiler or a
    coverage tracer, which write their results at exit.
    """
    code = main()
    multiprocessing = sys.modules.get("multiprocessing")
    waiting = threading.active_count() > 1 or (multiprocessing is not None and multiprocessing.active_children())
    if waiting or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
