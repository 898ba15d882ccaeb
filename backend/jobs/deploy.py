"""Deploying a finished run: its export in other formats, checked, and the config a stock TensorFlow Serving reads.

- `check_formats`: a zip of the SavedModel, TFLite float and dynamic-range int8 models, each with its size, the
  latency of one example and the largest difference from the SavedModel on the run's test rows, or the
  converter's reason for refusing (`models/formats.py`). TensorFlow runs in a process of its own: the dashboard
  that asks has none.
- `serving_folder`: every exported model in TensorFlow Serving's layout (`<name>/<version>/`) with a
  `models.config` beside it, and the `docker run tensorflow/serving` command that serves that folder.

Exports live beside their runs (`runs/<run-id>/export/<name>/<version>/`): the versions of one model are in
different run folders, which is why TensorFlow Serving gets a folder of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import auth, config
from backend.jobs.runs import exported_model
from db import Run, Store
from models.formats import REPORT, TFLITE, FormatCheck
from models.task import TEST_PREDICTIONS
from models.tasks import reads_text

FORMATS_DIR = "formats"  # beside a run: its export in other formats, and the report that checked them
SAVEDMODEL_ZIP = "savedmodel.zip"
PARITY_ROWS = 64  # test rows each format is compared on
MODELS_CONFIG = "models.config"
MOUNT = "/models"  # where TensorFlow Serving's container sees the folder (its image's own default)
DOCKER_IMAGE = "tensorflow/serving"
_EXPORT_GLOB = "*/export/*/*/saved_model.pb"  # the layout `backend.serving.repository.scan_exports` reads


# 1. The formats of one run.
def formats_dir(run: Run) -> Path:
    return config.paths().run_dir(run.id) / FORMATS_DIR


@auth.guarded("export", lambda path: f"SavedModel zip {path.name}", audited="export_savedmodel")
def savedmodel_zip(store: Store, run_id: int | str) -> Path:
    """The run's SavedModel as a zip of `<name>/<version>/…` (TensorFlow Serving's layout), written once.

    Raises:
        BadInput: the run has not exported a model.
    """
    run, export_dir = exported_model(store, run_id)
    target = formats_dir(run) / SAVEDMODEL_ZIP
    stamp = (export_dir / "saved_model.pb").stat().st_mtime
    if target.is_file() and target.stat().st_mtime >= stamp:  # a chosen threshold rewrites the export: zip again
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    prefix = Path(str(run.model_name)) / str(run.model_version)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(export_dir.rglob("*")):
            if path.is_file():
                zf.write(path, str(prefix / path.relative_to(export_dir)))
    partial.replace(target)
    return target


def _parity_rows(store: Store, run: Run) -> Any:
    """Up to PARITY_ROWS of the run's test rows as uploaded (images as their encoded bytes), the target dropped."""
    from backend import data

    version = store.get_version(run.version_id)
    assert version is not None
    frame = data.load_frame(version)
    kept = config.paths().run_dir(run.id) / TEST_PREDICTIONS
    if kept.is_file():
        import pandas as pd

        positions = pd.read_parquet(kept, columns=["row"])["row"].to_numpy()[:PARITY_ROWS]
        frame = frame.iloc[positions]
    frame = frame.head(PARITY_ROWS).drop(columns=[c for c in (run.target,) if c], errors="ignore")
    if reads_text(run.task):  # the export's input is `text`, whatever the column was called
        frame = frame[[run.evaluation["plan"]["text"]]].set_axis(["text"], axis=1)
    if run.task == "image-classification":
        root = config.paths().datasets
        frame = frame.assign(image=[(root / file).read_bytes() for file in frame["file"]])[["image"]]
    return frame.reset_index(drop=True)


@auth.guarded("export", lambda checks: f"{len(checks)} formats", audited="export_formats")
def check_formats(store: Store, run_id: int | str) -> list[FormatCheck]:
    """Every format of the run's export, written beside the run and checked on its test rows (see the module).

    The first entry is the SavedModel (its file the zip); a format that cannot be made has `refused` set.

    Raises:
        BadInput: the run has not exported a model.
        RuntimeError: the checking process failed (a bug; its error output is in the message).
    """
    run, export_dir = exported_model(store, run_id)
    out = formats_dir(run)
    archive = savedmodel_zip(store, run.id)
    rows = out / "parity_rows.parquet"
    _parity_rows(store, run).to_parquet(rows, index=False)
    for stale in [out / REPORT, *(out / file for file in TFLITE.values())]:
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-m", "models.formats", str(export_dir), str(out), str(rows)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"Checking the formats of run {run.id} failed:\n{done.stderr[-2000:]}")
    checks = saved_formats(run)
    assert checks is not None and archive.is_file()
    return checks


def saved_formats(run: Run) -> list[FormatCheck] | None:
    """The formats checked last for this run (the SavedModel's file its zip), or None when they never were."""
    report, archive = formats_dir(run) / REPORT, formats_dir(run) / SAVEDMODEL_ZIP
    if not report.is_file():
        return None
    checks = [FormatCheck(**entry) for entry in json.loads(report.read_text())]
    if archive.is_file() and checks[0].refused is None:
        zipped = {"file": archive.name, "size_bytes": archive.stat().st_size}
        checks[0] = FormatCheck(**(checks[0].to_dict() | zipped))
    return checks


def format_file(run: Run, check: FormatCheck) -> Path | None:
    """The file of a format that was made (None for a refused one)."""
    return None if check.file is None else formats_dir(run) / check.file


# 2. TensorFlow Serving: a folder of every exported model, its models.config, and the command that serves it.
@dataclass(frozen=True)
class ServingFolder:
    """What `serving_folder` wrote (or would write): models and versions, the config, the docker command."""

    folder: Path
    models: dict[str, list[int]]  # name -> versions, lowest first
    config: str  # models.config, TensorFlow Serving's model_config_list text format
    command: str  # docker run …


def exported_models() -> dict[str, dict[int, Path]]:
    """Model name -> version -> its export folder, for every exported model under the home."""
    found: dict[str, dict[int, Path]] = {}
    for saved_model in sorted(config.paths().runs.glob(_EXPORT_GLOB)):
        folder = saved_model.parent
        if folder.name.isdigit() and int(folder.name) > 0:
            found.setdefault(folder.parent.name, {}).setdefault(int(folder.name), folder)
    return found


def stage_labels(store: Store) -> dict[str, dict[str, int]]:
    """The model registry's stages as TensorFlow Serving's version labels: model name -> stage -> version.

    A stage ("production", "staging") is set with `modeldeck models promote` or on the Models page.
    """
    return store.current_stages()


def _quoted(text: str) -> str:
    return json.dumps(text)  # a protobuf text-format string: double quotes, backslash escapes


def models_config(models: dict[str, list[int]], *, mount: str = MOUNT, labels: dict[str, dict[str, int]]) -> str:
    """TensorFlow Serving's `--model_config_file`: one config per model, every version served, stages as labels.

    Args:
        models: Model name -> its versions.
        mount: Where the serving folder is mounted in TensorFlow Serving's container.
        labels: Model name -> label -> version; a label whose version is not served is left out.
    """
    lines = ["model_config_list {"]
    root = mount.rstrip("/")
    for name, versions in sorted(models.items()):
        served = sorted(versions)
        lines += [
            "  config {",
            f"    name: {_quoted(name)}",
            f"    base_path: {_quoted(f'{root}/{name}')}",
            '    model_platform: "tensorflow"',
            "    model_version_policy { specific { " + " ".join(f"versions: {v}" for v in served) + " } }",
        ]
        for label, version in sorted(labels.get(name, {}).items()):
            if version in served:
                lines.append(f"    version_labels {{ key: {_quoted(label)} value: {version} }}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def docker_command(folder: str, *, mount: str = MOUNT) -> str:
    """The `docker run` that serves the folder with a stock TensorFlow Serving (REST on 8501, gRPC on 8500)."""
    return (
        f"docker run -p 8501:8501 -p 8500:8500 -v {folder}:{mount} {DOCKER_IMAGE} "
        f"--model_config_file={mount.rstrip('/')}/{MODELS_CONFIG}"
    )


def serving_plan(store: Store, *, folder: str = "$PWD/serving", mount: str = MOUNT) -> ServingFolder:
    """What `serving_folder` would write for the models exported now, without writing it (for a page to show)."""
    models = {name: sorted(versions) for name, versions in exported_models().items()}
    text = models_config(models, mount=mount, labels=stage_labels(store))
    return ServingFolder(Path(folder), models, text, docker_command(folder, mount=mount))


@auth.guarded("export", lambda _folder: "a TensorFlow Serving folder", audited="export_serving")
def serving_folder(store: Store, *, out: Path, mount: str = MOUNT) -> ServingFolder:
    """Write every exported model into `out/<name>/<version>/` and `out/models.config`.

    A version already in `out` is replaced (a chosen threshold rewrites an export); other files there are left.
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    exported = exported_models()
    for name, versions in exported.items():
        for version, source in versions.items():
            target = out / name / str(version)
            staging = target.with_name(f".{version}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    plan = serving_plan(store, folder=str(out), mount=mount)
    (out / MODELS_CONFIG).write_text(plan.config)
    return plan
