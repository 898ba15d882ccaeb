"""The command line as scripts use it: exit codes, one-line errors and the --json keys."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests import factories


def test_samples_lists_the_built_in_datasets(home) -> None:
    names = [s["name"] for s in factories.cli_json(home, "samples")["samples"]]
    assert {"breast-cancer", "wine", "telco-churn", "diamonds"} <= set(names)


def test_data_add_prints_the_documented_keys(home, tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    out = factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    assert {k: out[k] for k in ("id", "name", "kind", "rows")} == {
        "id": 1,
        "name": "churn",
        "kind": "tabular",
        "rows": 240,
    }
    assert out["columns"] == ["tenure", "plan", "charges", "churn"]
    assert len(out["version"]) == 12


def test_a_bad_file_exits_2_with_one_line_and_no_traceback(home, tmp_path) -> None:
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b,c\n1,2,3\n4,5\n")
    result = factories.cli(home, "data", "add", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Row 3 of 'ragged.csv' has 2 fields but the header has 3. "
        "Fix that row (a missing or extra delimiter, or an unquoted ',')."
    )
    assert "Traceback" not in result.stderr
    assert factories.cli_json(home, "data", "list")["datasets"] == []


def test_a_missing_file_and_an_unknown_target_exit_2(home, tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    assert factories.cli(home, "data", "add", str(tmp_path / "nope.csv")).returncode == 2
    unknown = factories.cli(home, "data", "add", str(csv), "--target", "label")
    assert (unknown.returncode, "Target column 'label' not found" in unknown.stderr) == (2, True)


def test_usage_errors_exit_2(home) -> None:
    assert factories.cli(home, "train").returncode == 2


def test_help_and_parsing_import_no_heavy_library() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from backend import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "cli.parser().parse_args(['train', 'churn', '--task', 'classification', '--wait'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'pandas', 'sqlalchemy'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=factories.ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_help_ends_with_every_exit_status() -> None:
    from backend import cli

    documented = cli.parser().format_help().split("exit status:\n")[1].splitlines()
    assert [line.split()[0] for line in documented] == ["0", "1", "2", "3", "4", "5", "6", "130"]


def test_data_check_passes_a_clean_dataset(home, tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    out = factories.cli_json(home, "data", "check", "churn")
    assert out["passed"] is True
    assert all({"id", "severity", "passed", "message"} <= set(c) for c in out["checks"])


def test_data_check_exits_3_when_the_gate_blocks(home, tmp_path) -> None:
    csv = tmp_path / "tiny.csv"
    factories.churn_frame(rows=10).to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    result = factories.cli(home, "data", "check", "tiny", "--json")
    out = json.loads(result.stdout)
    assert (result.returncode, out["passed"]) == (3, False)
    assert [c["id"] for c in out["checks"] if not c["passed"]] == ["too_few_rows"]


def test_train_exits_3_on_a_blocked_dataset_without_an_override(home, tmp_path) -> None:
    csv = tmp_path / "tiny.csv"
    factories.churn_frame(rows=10).to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    result = factories.cli(home, "train", "tiny")
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "error: The quality gate blocks training: 10 rows; at least 30 are needed. "
        "Fix the data, or give a reason to override."
    )


def test_train_rejects_a_bad_hyperparameter_with_exit_2(home, tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    result = factories.cli(home, "train", "churn", "--set", "dropout=2")
    assert (result.returncode, result.stderr.strip()) == (2, "error: dropout must be in [0, 1) (try 0.1).")


def test_a_run_that_fails_while_waited_for_exits_4_with_one_line_and_no_traceback(home, tmp_path) -> None:
    csv = tmp_path / "losses.csv"
    losses = factories.price_frame().rename(columns={"price": "loss"})
    losses.assign(loss=-losses["loss"]).to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "loss")
    # A log scale on a negative target: the loss is NaN from the first batch, and the run fails in training.
    result = factories.cli(
        home,
        "train",
        "losses",
        "--epochs",
        "2",
        "--set",
        "scale_target=log",
        "--set",
        "architecture=mlp",
        "--wait",
        "--json",
    )
    out = json.loads(result.stdout)
    assert (result.returncode, out["status"]) == (4, "failed")
    assert result.stderr.splitlines() == [
        f"error: run {out['run_id']} failed ({' '.join(out['error'].split())}). "
        f"Details: `modeldeck runs show {out['run_id']}`."
    ]


def test_runs_list_and_show_report_the_run(churn_run) -> None:
    listed = factories.cli_json(churn_run["home"], "runs", "list")["runs"]
    shown = factories.cli_json(churn_run["home"], "runs", "show", str(churn_run["run_id"]))
    assert [r["run_id"] for r in listed] == [churn_run["run_id"]]
    assert {"status", "device", "throughput", "epochs_done", "model_name", "model_version"} <= set(shown)


def test_a_run_waited_for_leaves_its_job_ended_as_the_run_did(churn_run) -> None:
    """`--wait` stops the worker it started as soon as the run records its end, while the run's process may still
    be exiting; the job keeps the run's end instead of being marked interrupted."""
    with sqlite3.connect(churn_run["home"] / "modeldeck.db") as db:
        jobs = db.execute("SELECT status FROM jobs WHERE run_id = ?", (churn_run["run_id"],)).fetchall()
    assert jobs == [("succeeded",)]


def test_predict_returns_label_and_probabilities_per_row(churn_run) -> None:
    rows = factories.churn_frame(rows=3, seed=4).drop(columns=["churn"]).to_dict("records")
    out = factories.cli_json(churn_run["home"], "predict", str(churn_run["run_id"]), "--row", json.dumps(rows))
    assert len(out["predictions"]) == 3
    for p in out["predictions"]:
        assert set(p) == {"label", "probabilities"}
        assert set(p["probabilities"]) == {"no", "yes"}
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5


def test_predict_with_a_missing_column_exits_2(churn_run) -> None:
    result = factories.cli(churn_run["home"], "predict", str(churn_run["run_id"]), "--row", '{"tenure": 3}')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: Missing input columns: ")


def test_eval_returns_the_test_split_metrics(churn_run) -> None:
    out = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]))
    assert (out["task"], out["metrics"]) == ("classification", churn_run["metrics"])


def test_export_copies_the_savedmodel_in_serving_layout(churn_run, tmp_path) -> None:
    out = factories.cli_json(churn_run["home"], "export", str(churn_run["run_id"]), "--out", str(tmp_path / "m"))
    assert out["path"] == str(tmp_path / "m" / "churn" / "1")
    assert (tmp_path / "m" / "churn" / "1" / "saved_model.pb").is_file()


def test_an_unknown_run_exits_2(churn_run) -> None:
    result = factories.cli(churn_run["home"], "runs", "show", "999")
    assert (result.returncode, result.stderr.strip()) == (2, "error: No run 999. List runs with `modeldeck runs list`.")


def test_a_table_of_image_paths_with_a_zip_becomes_an_image_dataset(home, tmp_path) -> None:
    import io
    import zipfile

    from PIL import Image

    buffer, rows = io.BytesIO(), ["path,label"]
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(40):
            image = io.BytesIO()
            Image.new("RGB", (40, 40), (i * 6, 100, 200 - i)).save(image, "PNG")
            archive.writestr(f"pics/{i}.png", image.getvalue())
            rows.append(f"pics/{i}.png,{'cat' if i % 2 else 'dog'}")
    (tmp_path / "photos.zip").write_bytes(buffer.getvalue())
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    out = factories.cli_json(
        home, "data", "add", str(tmp_path / "labels.csv"), "--images", str(tmp_path / "photos.zip")
    )
    assert (out["kind"], out["rows"], out["target"]) == ("images", 40, "label")


def test_version_and_help_name_every_argument(capsys: pytest.CaptureFixture[str]) -> None:
    from backend import cli

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    version = capsys.readouterr().out.strip()
    with pytest.raises(SystemExit):
        cli.main(["data", "compare", "--help"])
    assert (version, "the older version's hash" in capsys.readouterr().out) == ("modeldeck 0.1.0", True)
