"""A report to hand over (issue 15 §6): one self-contained HTML page about a run, in English or Chinese, and a PDF
of it printed by headless Chromium, from the CLI and from the Evaluation page.

The session's trained churn (two classes) and price (regression) runs are read as they are; a copy of the churn
home, made once for the module, gets a threshold chosen with `modeldeck decide` and its permutation importance
computed, as a user would on the Evaluation page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from backend import i18n, jobs
from backend.errors import BadInput, NotFound
from backend.jobs import svg
from db import open_store
from tests import factories
from tests.test_pages import open_page, use_home

SECTIONS = ("glance", "data", "model", "metrics", "decision", "reasons")
TITLES = ("report.glance_title", "report.data_title", "report.model_title", "report.metrics_title")
DECIDED = [
    "--value-tp",
    "100",
    "--cost-fp",
    "20",
    "--cost-fn",
    "50",
    "--currency",
    "EUR",
    "--why",
    'call <b>budget</b> & "team"',
]


@pytest.fixture(scope="module")
def decided(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the churn home with a threshold chosen and the importance computed: {home, run_id, chosen}."""
    home = tmp_path_factory.mktemp("report") / "home"
    shutil.copytree(churn_run["home"], home)
    run_id = churn_run["run_id"]
    chosen = factories.cli_json(home, "decide", str(run_id), *DECIDED)
    with pytest.MonkeyPatch.context() as env:
        use_home(env, home)
        store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
        try:
            jobs.feature_importance(store, run_id)  # what the Evaluation page's button does
        finally:
            store.close()
    return {"home": home, "run_id": run_id, "chosen": chosen}


def _store_at(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[Any]:
    use_home(monkeypatch, home)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    yield store
    store.close()


@pytest.fixture
def churn(churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _store_at(monkeypatch, churn_run["home"])


@pytest.fixture
def prices(price_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _store_at(monkeypatch, price_run["home"])


@pytest.fixture
def decided_store(decided: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _store_at(monkeypatch, decided["home"])


def _row(page: str, row_id: str) -> list[str]:
    """The cells of the table row with this id, as text."""
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page)
    assert found, row_id
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", found.group(1))]


def _pages(pdf: bytes) -> int:
    """How many pages a PDF has: its page objects (`/Type /Page`, not the `/Pages` tree)."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


# -- the page -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_report_has_every_section_in_the_reader_s_language(
    churn: Any, churn_run: dict[str, Any], lang: str
) -> None:
    page = jobs.report_html(churn, churn_run["run_id"], lang=lang)

    assert page.startswith(f'<!doctype html>\n<html lang="{lang}">')
    assert re.findall(r'<section id="([a-z]+)"', page) == list(SECTIONS)
    assert all(i18n.render(lang, key) in page for key in TITLES)
    assert f"<h1>{i18n.render(lang, 'report.title', dataset='churn')}</h1>" in page
    fonts = re.search(r"body \{ font-family: ([^;]+);", page).group(1)
    assert fonts.startswith('"Noto Sans CJK SC"') if lang == "zh" else "Noto Sans CJK SC" in fonts  # CJK prints


def test_the_metrics_in_the_report_are_the_run_s(churn: Any, churn_run: dict[str, Any]) -> None:
    page = jobs.report_html(churn, churn_run["run_id"])
    m = churn_run["metrics"]

    scalars = ["accuracy", "f1_macro", "log_loss", "roc_auc", "average_precision", "brier", "ece"]
    shown = {key: _row(page, f"metric-{key}")[1] for key in scalars}
    assert shown == {key: f"{m[key]:,.3f}" for key in scalars}
    assert _row(page, "metric-accuracy")[2] == "0.500"  # the majority class of a balanced churn table
    for name, values in m["per_class"].items():
        assert f"<td>{name}</td><td>{values['precision']:,.3f}</td><td>{values['recall']:,.3f}</td>" in page
    assert i18n.render("en", "report.glance_cls", test=m["test_rows"], accuracy=m["accuracy"], baseline=0.5) in page
    assert page.count("<svg ") == 4  # ROC, precision-recall, calibration, gain; the confusion matrix is a table


def test_the_report_makes_no_request(churn: Any, churn_run: dict[str, Any]) -> None:
    page = jobs.report_html(churn, churn_run["run_id"], lang="zh")

    fetches = (
        r"(?:src|href|srcset|action|xmlns|xlink:href)\s*=|url\(|@import|<(?:script|link|iframe|object|embed|img)\b"
    )
    assert re.findall(fetches, page) == []
    assert "://" not in page


def test_without_a_threshold_or_importance_the_report_says_how_to_get_them(
    churn: Any, churn_run: dict[str, Any]
) -> None:
    page = jobs.report_html(churn, churn_run["run_id"], lang="zh")

    assert i18n.render("zh", "report.decision_none", positive="yes") in page
    assert f"<code>modeldeck decide {churn_run['run_id']} --value-tp V --cost-fp C --cost-fn C</code>" in page
    assert 'id="threshold"' not in page
    button = i18n.Message.of("explain.importance_compute")
    assert i18n.render("zh", "report.reasons_none", button=button) in page


def test_a_chosen_threshold_and_what_it_earns_appear_once_decided(decided: dict[str, Any], decided_store: Any) -> None:
    page = jobs.report_html(decided_store, decided["run_id"])
    chosen = decided["chosen"]

    rule = i18n.render("en", "report.decision_rule", positive="yes", negative="no", threshold=chosen["threshold"])
    assert f'<p class="verdict" id="threshold">{rule}</p>' in page
    assert f'<b id="expected-profit">{chosen["expected_profit"]:,.0f} EUR</b>' in page
    assert "Why: call &lt;b&gt;budget&lt;/b&gt; &amp; &quot;team&quot;</p>" in page  # a data value, as written
    assert page.count("<svg ") == 5  # and the profit over the threshold


def test_the_stored_importance_lists_the_columns_most_relied_on_first(
    decided: dict[str, Any], decided_store: Any
) -> None:
    page = jobs.report_html(decided_store, decided["run_id"])
    found = jobs.saved_importance(decided_store.get_run(decided["run_id"]))

    listed = [_row(page, f"reason-{rank}") for rank in range(1, len(found.columns) + 1)]
    assert [row[1] for row in listed] == [c.label for c in found.columns]  # three inputs, fewer than ten
    assert [row[3] for row in listed] == [f"{c.drop:.3f} ± {c.spread:.3f}" for c in found.columns]
    assert 'id="reason-4"' not in page


def test_a_regression_report_draws_its_errors_and_says_no_threshold_applies(
    prices: Any, price_run: dict[str, Any]
) -> None:
    page = jobs.report_html(prices, price_run["run_id"])
    m = price_run["metrics"]

    assert [_row(page, f"metric-{key}")[1] for key in ("rmse", "mae", "r2")] == [
        f"{m[key]:,.3f}" for key in ("rmse", "mae", "r2")
    ]
    for title in ("evaluation.pred_vs_actual", "evaluation.residual_histogram", "evaluation.deciles"):
        assert f"<b>{i18n.render('en', title)}</b>" in page
    assert page.count("<svg ") == 3
    assert i18n.render("en", "report.decision_not_classifier", task="regression") in page
    assert "Its test cases had price from" in page  # the range it was measured on


def test_an_unknown_run_or_language_is_refused(churn: Any, churn_run: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="^No run 999. List runs"):
        jobs.report_html(churn, 999)
    with pytest.raises(BadInput, match="^No report language 'fr'. Use one of: en, zh."):
        jobs.report_html(churn, churn_run["run_id"], lang="fr")


def test_chart_ticks_are_round_and_an_axis_keeps_one_unit() -> None:
    assert svg.nice([0.13, 0.91]) == (0.0, 1.0)
    assert svg.nice([-3.0, 7.0], zero=True) == (-4.0, 8.0)
    assert [label for _, label in svg.ticks(0.0, 12_500.0)] == ["0", "2.5k", "5k", "7.5k", "10k", "12.5k"]
    assert [label for _, label in svg.ticks(-4_000.0, 6_000.0)] == ["-4,000", "-2,000", "0", "2,000", "4,000", "6,000"]


# -- the PDF --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_chromium_prints_the_report_with_each_card_on_a_page_of_its_own(
    churn: Any, churn_run: dict[str, Any], lang: str
) -> None:
    pdf = jobs.report_pdf(churn, churn_run["run_id"], lang=lang)

    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    # The summary and data card, the model card, the metrics: each starts a page, and the charts follow.
    assert 3 <= _pages(pdf) <= 6


def test_the_chinese_pdf_embeds_a_cjk_font(churn: Any, churn_run: dict[str, Any]) -> None:
    installed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    if "Noto Sans CJK" not in installed:
        pytest.skip("Debian's fonts-noto-cjk is not installed")
    pdf = jobs.report_pdf(churn, churn_run["run_id"], lang="zh")

    assert re.search(rb"/FontName\s*/[A-Z]{6}\+NotoSansCJK", pdf)


def test_a_missing_chromium_is_one_line_of_advice(
    churn: Any, churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELDECK_CHROMIUM", str(tmp_path / "chromium"))
    with pytest.raises(BadInput, match=r"^Cannot write a PDF: MODELDECK_CHROMIUM=.*/chromium is not a program"):
        jobs.report_pdf(churn, churn_run["run_id"])
    monkeypatch.delenv("MODELDECK_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no browser on the PATH
    with pytest.raises(BadInput, match="^Cannot write a PDF: none of chromium, chromium-browser, google-chrome"):
        jobs.pdf_printer()


def test_a_failing_chromium_is_one_line_of_advice(
    churn: Any, churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_CHROMIUM", "false")  # runs, prints nothing, exits 1
    with pytest.raises(BadInput, match=r"^Chromium \(.*false\) could not print the report \(exit status 1\)"):
        jobs.report_pdf(churn, churn_run["run_id"])


# -- the faces ------------------------------------------------------------------------------------------------------
def test_the_cli_writes_the_report_as_html_or_pdf(decided: dict[str, Any], tmp_path: Path) -> None:
    home, run_id = decided["home"], str(decided["run_id"])
    page = factories.cli_json(home, "report", run_id, "--out", str(tmp_path / "report.html"))
    pdf = factories.cli_json(home, "report", run_id, "--out", str(tmp_path / "报告.PDF"), "--lang", "zh")

    assert page == {
        "run_id": decided["run_id"],
        "path": str(tmp_path / "report.html"),
        "format": "html",
        "bytes": (tmp_path / "report.html").stat().st_size,
    }
    assert (tmp_path / "report.html").read_text().startswith('<!doctype html>\n<html lang="en">')
    assert (pdf["format"], pdf["bytes"]) == ("pdf", (tmp_path / "报告.PDF").stat().st_size)
    assert (tmp_path / "报告.PDF").read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("run", "out", "env", "message"),
    [
        ("999", "r.html", {}, "error: No run 999. List runs with `modeldeck runs list`."),
        ("RUN", "no/folder/r.html", {}, "error: Cannot write the report to OUT/no/folder/r.html: No such file"),
        ("RUN", "r.pdf", {"MODELDECK_CHROMIUM": "/no/chromium"}, "error: Cannot write a PDF: MODELDECK_CHROMIUM="),
    ],
)
def test_the_cli_says_what_went_wrong_in_one_line_and_writes_nothing(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run: str, out: str, env: dict,
    message: str,
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run_id = str(churn_run["run_id"]) if run == "RUN" else run
    done = factories.cli(churn_run["home"], "report", run_id, "--out", str(tmp_path / out))

    assert (done.returncode, len(done.stderr.strip().splitlines())) == (2, 1), done.stderr
    assert done.stderr.startswith(message.replace("OUT", str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the page's download buttons would make, by file name (Streamlit makes it when one is pressed)."""
    made: dict[str, Any] = {}
    register = MediaFileManager.add_deferred

    def spy(self: MediaFileManager, data_callable: Any, mimetype: Any, coordinates: str, file_name: Any = None,
            **kwargs: Any) -> str:  # fmt: skip
        made[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return made


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_evaluation_page_hands_the_report_over_as_html_and_pdf(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, downloads: dict[str, Any], lang: str
) -> None:
    use_home(monkeypatch, churn_run["home"])
    at = open_page("views/evaluation.py", lang=lang if lang != "en" else None)

    wanted = {i18n.render(lang, "report.download_html"), i18n.render(lang, "report.download_pdf")}
    buttons = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label in wanted}
    assert buttons == dict.fromkeys(wanted, False)  # beside the Deploy section's downloads, when formats exist
    name = f"modeldeck-run-{churn_run['run_id']}-{lang}"
    assert downloads[f"{name}.html"]().startswith(f'<!doctype html>\n<html lang="{lang}">')
    assert downloads[f"{name}.pdf"]().startswith(b"%PDF-")


def test_the_evaluation_page_says_why_there_is_no_pdf_without_chromium(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_home(monkeypatch, churn_run["home"])
    monkeypatch.setenv("MODELDECK_CHROMIUM", str(tmp_path / "chromium"))
    at = open_page("views/evaluation.py")

    buttons = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label.startswith("Report")}
    assert buttons == {"Report (HTML)": False, "Report (PDF)": True}
    assert any(c.value.startswith("Cannot write a PDF: MODELDECK_CHROMIUM=") for c in at.caption)
