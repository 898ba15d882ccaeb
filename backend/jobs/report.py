"""A report to hand over: one self-contained HTML page about a finished run, and a PDF of it.

`report_html` reads what the app stored about a run (its dataset version and that version's latest quality
report, the run's spec, metrics and evaluation details, the threshold chosen for its model, the permutation
importance computed for it) and writes it up for a reader who never opens ModelDeck: a summary, a data card, a
model card, the metrics with their charts, the threshold and what it earns, and what the predictions rest on.
Every word comes from the message catalog, in English or Chinese; data values stay as they are. The page holds
everything it shows: the charts are inline SVG (`svg.py`), the styles are inline, the fonts are the reader's own
(a CJK font first for Chinese), and there is no script, so it opens and prints anywhere without a network.

`print_pdf` prints that page with headless Chromium (Debian's `chromium`, or the program `MODELDECK_CHROMIUM`
names) in a fresh profile with every host name unresolvable, so printing cannot reach out either.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from backend import data, quality
from backend.errors import BadInput, ModelDeckError
from backend.i18n import EN, LANGUAGES, Message, render
from backend.jobs import svg
from backend.jobs.decisions import current, curve
from backend.jobs.decisions import describe as describe_decision
from backend.jobs.explanations import TABLE_TASKS, saved_example, saved_importance
from backend.jobs.runs import exported_model
from db import Dataset, DatasetVersion, Decision, Run, Store
from models.decision import Costs
from models.tasks import reads_text, task_info

CHROMIUM_ENV = "MODELDECK_CHROMIUM"  # the program that prints PDFs, when it is not on the PATH as one of BROWSERS
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 120
TOP_REASONS = 10  # columns in the importance table
MAX_COLUMNS = 40  # rows of the data card's column table; a wider table says how many more it has
MAX_NAMED = 12  # classes (or inputs) named in one sentence
EXAMPLES = 5  # test texts listed as examples (twice as many image mistakes: they are one line each)
SAMPLES = 3  # generated continuations shown
COUNTS = ("test_rows", "test_users", "test_tokens", "k")  # metrics that are counts, said in sentences instead
HEADLINE = ("accuracy", "ndcg_at_k", "rmse", "perplexity")  # the summary names the first one a run has
Z_95 = 1.96
FONTS = {  # local fonts only (a web font would be a request); a CJK font first for a Chinese reader
    "en": '"Noto Sans", "DejaVu Sans", "Helvetica Neue", Arial, "Noto Sans CJK SC", sans-serif',
    "zh": '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Noto Sans", sans-serif',
}


# -- words and numbers ----------------------------------------------------------------------------------------------
def _esc(value: Any) -> str:
    """A data value as HTML text."""
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    """A metric as a reader sees it: three decimals, thousands separated; a dash for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _plain(value: Any) -> str:
    """A setting's value: a list joined, a float short."""
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.0f} {currency}".strip()


def _when(moment: datetime | None) -> str:
    """A stored time (naive UTC) as the report prints it."""
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _names(values: Sequence[Any], most: int = MAX_NAMED) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (", …" if len(values) > most else "")


def _css_string(text: str) -> str:
    """Text as a CSS string literal that can close neither its string nor the style element."""
    return '"' + "".join(c if c.isalnum() or c in " ·-_.,:" else f"\\{ord(c):x} " for c in text) + '"'


def _nearest(values: Sequence[float], value: float) -> int:
    return min(range(len(values)), key=lambda i: abs(values[i] - value))


# -- what the report is about ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subject:
    """Everything the report tells, read from the store once, and the reader's language."""

    lang: str
    run: Run
    dataset: Dataset | None
    version: DatasetVersion | None
    gate: quality.Report | None  # the version's latest quality report for the run's target
    gate_at: datetime | None
    decision: Decision | None

    @property
    def ev(self) -> dict[str, Any]:
        return self.run.evaluation

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.ev.get("classes", [])]

    @property
    def test_rows(self) -> int:
        return int(self.run.metrics.get("test_rows") or self.ev.get("rows", {}).get("test") or 0)

    @property
    def dataset_name(self) -> str:
        return self.dataset.name if self.dataset else "—"

    @property
    def version_hash(self) -> str:
        return self.version.hash[:12] if self.version else "—"

    def say(self, key: str, **params: Any) -> str:
        """Catalog text in the reader's language, as plain text (a chart escapes its own)."""
        return render(self.lang, key, **params)

    def t(self, key: str, **params: Any) -> str:
        """Catalog text in the reader's language, as HTML."""
        return _esc(self.say(key, **params))

    def label(self, prefix: str, name: str) -> str:
        """`prefix.name` from the catalog where it has one (a metric, a setting, a kind), else the name as it is."""
        return self.say(f"{prefix}.{name}") if f"{prefix}.{name}" in EN else name

    def task(self) -> str:
        return self.label("task", self.run.task)


def _subject(store: Store, run: Run, lang: str) -> _Subject:
    version = store.get_version(run.version_id)
    dataset = store.find_dataset(version.dataset_id) if version else None
    record = store.latest_quality_report(version.id, run.target) if version else None
    return _Subject(
        lang=lang,
        run=run,
        dataset=dataset,
        version=version,
        gate=quality.Report.of(record) if record else None,
        gate_at=record.created_at if record else None,
        decision=current(store, run),
    )


# -- building blocks (cells and lines are HTML already) ------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "", ids: Sequence[str] = ()) -> str:
    """An HTML table; `ids` names its rows, so that a script (or a test) can find a value."""
    head = "".join(f"<th>{h}</th>" for h in header)
    named = [f' id="{_esc(name)}"' for name in ids] + [""] * (len(rows) - len(ids))
    body = "".join(
        f"<tr{name}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for name, row in zip(named, rows, strict=True)
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    """Labels and their values, as a definition list."""
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _paragraphs(lines: Sequence[str]) -> str:
    return "".join(f"<p>{line}</p>" for line in lines)


def _items(lines: Sequence[str], *, cls: str = "") -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{line}</li>" for line in lines) + "</ul>" if lines else ""


def _figure(title: str, caption: str, body: str) -> str:
    return f"<figure><figcaption><b>{title}</b> {caption}</figcaption>{body}</figure>"


def _wide(body: str) -> str:
    """A block that spans the whole width of the charts' grid."""
    return f'<div class="wide">{body}</div>'


def _section(anchor: str, title: str, body: str, *, new_page: bool = False) -> str:
    page = ' class="new-page"' if new_page else ""
    return f'<section id="{anchor}"{page}><h2>{title}</h2>{body}</section>'


# -- 1. the title and the summary -----------------------------------------------------------------------------------
def _header(s: _Subject) -> str:
    run = s.run
    facts = [
        (s.t("report.fact_run"), _esc(run.id)),
        (s.t("report.fact_task"), _esc(s.task())),
        (s.t("report.fact_dataset"), _esc(s.dataset_name)),
        (s.t("report.fact_version"), f"<code>{_esc(s.version_hash)}</code>"),
        (s.t("report.fact_model"), s.t("report.model_version", name=run.model_name, version=run.model_version)),
        (s.t("report.fact_trained"), _esc(_when(run.finished_at or run.created_at))),
    ]
    if run.target:
        facts.insert(2, (s.t("report.fact_target"), _esc(run.target)))
    return (
        f"<header><h1>{s.t('report.title', dataset=s.dataset_name)}</h1>"
        f'<p class="subtitle">{s.t("report.subtitle", task=s.task(), run_id=run.id)}</p>{_facts(facts)}</header>'
    )


def _headline(s: _Subject) -> str:
    """One sentence on how well the model does, against the trivial rule where there is one."""
    m, base = s.run.metrics, s.ev.get("baseline", {})
    if m.get("accuracy") is not None and base.get("accuracy") is not None:
        return s.t("report.glance_cls", test=s.test_rows, accuracy=m["accuracy"], baseline=base["accuracy"])
    if s.run.task == "regression" and m.get("rmse") is not None and base.get("rmse") is not None:
        return s.t("report.glance_reg", test=s.test_rows, rmse=m["rmse"], baseline=base["rmse"])
    key = next((k for k in HEADLINE if m.get(k) is not None), None)
    if key is None:
        return s.t("report.glance_no_metric")
    return s.t("report.glance_other", metric=s.label("metric", key), value=_number(m[key]))


def _glance(s: _Subject) -> str:
    lines = [_headline(s)]
    if s.gate is None:
        lines.append(s.t("report.quality_none"))
    else:
        verdict = "report.glance_quality_pass" if s.gate.passed else "report.glance_quality_blocked"
        lines.append(s.t(verdict, score=quality.score(s.gate.checks)))
    if s.run.override_reason:
        lines.append(s.t("report.override", reason=s.run.override_reason))
    if s.decision is not None and s.decision.threshold is not None:
        chosen = describe_decision(s.run, s.decision)
        profit = _money(chosen["expected_profit"], chosen["costs"].get("currency", ""))
        lines.append(
            s.t("report.glance_threshold", positive=chosen["positive"], threshold=chosen["threshold"], profit=profit)
        )
    elif s.decision is not None:  # a cost matrix
        saving = _money(s.decision.outcome.get("saving", 0.0), s.decision.costs.get("currency", ""))
        lines.append(s.t("report.glance_costs", saving=saving))
    elif len(s.classes) == 2:
        lines.append(s.t("report.glance_no_threshold"))
    findings = len(s.ev.get("diagnostics", []))
    warnings = Message.counted("report.glance_warnings", findings) if findings else Message.of("report.glance_calm")
    lines.append(_esc(warnings.text(s.lang)))
    return _section("glance", s.t("report.glance_title"), _items(lines, cls="glance"))


# -- 2. the data card -----------------------------------------------------------------------------------------------
def _features(s: _Subject) -> list[str]:
    """The columns a table model reads (its plan's features, by kind); none for the other families."""
    return [str(c) for names in s.ev.get("features", {}).values() for c in names]


def _inputs(s: _Subject, version: DatasetVersion) -> set[str]:
    """The columns the model reads: a table model's features, else the text, the user and item, or the images."""
    if s.run.task in TABLE_TASKS:
        return set(_features(s))
    found = data.roles(version.columns)
    named = {found[role] for role in task_info(s.run.task).roles if found.get(role)}
    return {str(n) for n in named} | {c["name"] for c in version.columns if c.get("kind") == "image"}


def _columns(s: _Subject, version: DatasetVersion) -> str:
    inputs, rows = _inputs(s, version), []
    for column in version.columns[:MAX_COLUMNS]:
        name, missing = column["name"], int(column.get("missing", 0))
        if name == s.run.target:
            role = s.t("report.role_target")
        else:
            role = s.t("report.role_input" if name in inputs else "report.role_unused")
        share = f" ({missing / max(version.rows, 1):.1%})" if missing else ""
        kind = s.label("kind", str(column.get("kind")))
        rows.append([_esc(column.get("original", name)), _esc(kind), f"{missing:,}{share}", role])
    header = [s.t(f"report.col_{k}") for k in ("column", "kind", "missing", "role")]
    more = len(version.columns) - MAX_COLUMNS
    return _table(header, rows, cls="columns") + (
        f"<p>{s.t('report.more_columns', count=more)}</p>" if more > 0 else ""
    )


def _provenance(s: _Subject) -> list[str]:
    """Where a built-in sample comes from, its licence and what its target means; the source of anything else."""
    source = s.dataset.source if s.dataset else ""
    sample = data.SAMPLES.get(source.removeprefix("sample:")) if source.startswith("sample:") else None
    if sample is None and source.startswith("upload:"):
        return [s.t("report.data_upload", file=source.removeprefix("upload:"))]
    if sample is None:
        return [s.t("report.data_source", source=source or "—")]
    return [
        s.t(
            "report.data_sample",
            title=sample.text("title", s.lang),
            source=sample.text("source", s.lang),
            licence=sample.text("licence", s.lang),
        ),
        s.t("report.data_meaning", target=sample.target, meaning=sample.text("meaning", s.lang)),
    ]


def _gate(s: _Subject) -> str:
    """The quality verdict, its score and the failing checks' one-line findings."""
    if s.gate is None:
        return f"<p>{s.t('report.quality_none')}</p>"
    checks = s.gate.checks
    failing = [c for c in checks if not c.passed]
    verdict = "report.quality_pass" if s.gate.passed else "report.quality_blocked"
    head = s.t(verdict, score=quality.score(checks), date=_when(s.gate_at))
    findings = [
        f'<span class="level {_esc(c.severity)}">{s.t(f"level.{c.severity}")}</span> {_esc(c.text(s.lang))}'
        for c in failing
    ]
    passed = s.t("report.quality_passed", passed=len(checks) - len(failing), count=len(checks))
    return (
        f'<p class="verdict {"pass" if s.gate.passed else "blocked"}" id="quality-verdict">{head}</p>'
        f"{_items(findings, cls='checks')}<p>{passed}</p>"
    )


def _data_card(s: _Subject) -> str:
    version = s.version
    if version is None:
        return _section("data", s.t("report.data_title"), f"<p>{s.t('report.data_gone')}</p>")
    kind = s.dataset.kind if s.dataset else "tabular"
    lines = [
        s.t(
            "report.data_intro",
            dataset=s.dataset_name,
            kind=Message.of(f"datakind.{kind}"),
            version=s.version_hash,
            rows=version.rows,
            columns=len(version.columns),
        ),
        *_provenance(s),
    ]
    if s.run.target:
        lines.append(s.t("report.data_target", target=s.run.target))
    if version.notes:
        lines.append(s.t("report.data_notes", notes=data.note_text(version, s.lang)))
    body = _paragraphs(lines) + _columns(s, version) + f"<h3>{s.t('report.quality_title')}</h3>" + _gate(s)
    return _section("data", s.t("report.data_title"), body)


# -- 3. the model card ----------------------------------------------------------------------------------------------
def _intended_use(s: _Subject) -> str:
    params = {
        "target": s.run.target or "—",
        "classes": _names(s.classes),
        "k": s.run.metrics.get("k") or s.run.spec.get("top_k", 10),
        "task": s.task().lower(),  # within a sentence (Chinese has no case)
    }
    key = f"report.use.{s.run.task}"
    return _paragraphs([s.t(key if key in EN else "report.use.other", **params), s.t("report.use_scope")])


def _training_data(s: _Subject) -> str:
    rows = s.ev.get("rows", {})
    split = {part: rows.get(part, 0) for part in ("train", "validation", "test")}
    lines = [s.t("report.training_rows", dataset=s.dataset_name, version=s.version_hash, **split)]
    inputs = _features(s)
    if inputs:
        lines.append(s.t("report.training_inputs", columns=_names(inputs, most=30)))
    return _paragraphs(lines)


def _settings(s: _Subject) -> str:
    """Every setting of the spec, two to a row: enough to train the same model again."""
    settings = sorted(
        (
            (s.label("hp", k), s.say("report.yes" if v else "report.no") if isinstance(v, bool) else _plain(v))
            for k, v in s.run.spec.items()
            if not isinstance(v, dict)
        ),  # a search's own plan is not a setting
        key=lambda pair: pair[0],
    )
    cells = [[_esc(name), f"<code>{_esc(value)}</code>"] for name, value in settings]
    half = -(-len(cells) // 2)
    rows = [cells[i] + (cells[i + half] if i + half < len(cells) else ["", ""]) for i in range(half)]
    header = [s.t("report.col_setting"), s.t("report.col_value")] * 2
    return f"<p>{s.t('report.settings_intro', run_id=s.run.id)}</p>" + _table(header, rows, cls="settings")


def _architecture(s: _Subject) -> str:
    run, plan = s.run, s.ev.get("plan", {})
    name = str(plan.get("architecture") or run.spec.get("architecture") or "")
    lines = [s.t("report.arch_line", arch=s.label("arch", name) if name else s.task())]
    selection = s.ev.get("selection")
    if selection:
        candidates = ", ".join(s.label("arch", c) for c in selection.get("scores", {}))
        metric = s.label("metric", str(selection.get("metric", "")))
        lines.append(s.t("report.arch_selected", candidates=candidates, metric=metric))
    env = run.environment
    lines.append(
        s.t(
            "report.arch_training",
            seconds=run.duration_s,
            device=run.device or "—",
            precision=env.get("precision", "—"),
            tf=env.get("tensorflow", "—"),
        )
    )
    return _paragraphs(lines) + _settings(s)


def _margin(accuracy: float, n: int) -> float:
    """Half the width of the 95% interval of an accuracy measured on n cases (normal approximation)."""
    return Z_95 * math.sqrt(accuracy * (1 - accuracy) / n)


def _limitations(s: _Subject) -> str:
    run, m = s.run, s.run.metrics
    share = float(run.spec.get("test_split", 0.15))
    lines = [s.t("report.limit_test", test=s.test_rows, share=share, seed=run.spec.get("seed", "—"))]
    if m.get("accuracy") is not None and s.test_rows:
        margin = _margin(float(m["accuracy"]), s.test_rows)
        lines.append(s.t("report.limit_margin", test=s.test_rows, accuracy=m["accuracy"], margin=margin))
    if task_info(run.task).classifier and s.classes:
        lines.append(s.t("report.limit_classes", classes=_names(s.classes)))
    deciles = s.ev.get("deciles") or []
    if deciles:
        low, high = min(d["low"] for d in deciles), max(d["high"] for d in deciles)
        lines.append(s.t("report.limit_range", target=run.target or "—", low=f"{low:,.4g}", high=f"{high:,.4g}"))
    lines += [s.t(f"diagnosis.{f['id']}", **f.get("params", {})) for f in s.ev.get("diagnostics", [])]
    if run.override_reason:
        lines.append(s.t("report.override", reason=run.override_reason))
    lines.append(s.t("report.limit_bias"))
    return _items(lines)


def _model_card(s: _Subject) -> str:
    body = (
        f"<h3>{s.t('report.use_title')}</h3>{_intended_use(s)}"
        f"<h3>{s.t('report.training_title')}</h3>{_training_data(s)}"
        f"<h3>{s.t('report.arch_title')}</h3>{_architecture(s)}"
        f"<h3>{s.t('report.limits_title')}</h3>{_limitations(s)}"
    )
    return _section("model", s.t("report.model_title"), body, new_page=True)


# -- 4. the metrics and their charts --------------------------------------------------------------------------------
def _metrics_table(s: _Subject) -> str:
    """Each metric of the run on the test rows, the trivial rule's beside it where it was scored too."""
    m, base = s.run.metrics, s.ev.get("baseline", {})
    keys = [k for k, v in m.items() if k not in COUNTS and not isinstance(v, dict | list)]
    compared = any(base.get(k) is not None for k in keys)
    header = [s.t("report.col_metric"), s.t("report.col_model")]
    header += [s.t("report.col_baseline")] if compared else []
    rows = []
    for k in keys:
        row = [_esc(s.label("metric", k)), f"<b>{_esc(_number(m[k]))}</b>"]
        row += [_esc(_number(base.get(k)))] if compared else []
        rows.append([*row, s.t(f"meaning.{k}") if f"meaning.{k}" in EN else ""])
    table = _table([*header, s.t("report.col_meaning")], rows, cls="metrics", ids=[f"metric-{k}" for k in keys])
    rule = f"report.baseline.{task_info(s.run.task).charts[0]}"
    return table + (f'<p class="note">{s.t(rule)}</p>' if compared and rule in EN else "")


def _per_class(s: _Subject) -> str:
    per_class = s.run.metrics.get("per_class")
    if not per_class:
        return ""
    columns = ("precision", "recall", "f1", "support")
    header = [s.t("evaluation.class"), *(s.t(f"evaluation.col_{c}") for c in columns)]
    rows = [[_esc(name), *(_esc(_number(values.get(c))) for c in columns)] for name, values in per_class.items()]
    return f"<h3>{s.t('evaluation.per_class')}</h3>" + _table(header, rows, cls="per-class")


def _confusion(s: _Subject) -> str:
    """The confusion matrix as a table: each cell's count, and its share of the actual class, shaded by it."""
    classes, matrix = s.classes, s.ev.get("confusion_matrix", [])
    if not matrix:
        return ""
    corner = f"{s.t('evaluation.actual')} ↓ &nbsp; {s.t('evaluation.predicted')} →"
    head = f"<tr><th>{corner}</th>" + "".join(f"<th>{_esc(c)}</th>" for c in classes) + "</tr>"
    body = []
    for name, row in zip(classes, matrix, strict=False):
        cells = []
        for count in row:
            share = count / max(sum(row), 1)
            ink = "#fff" if share > 0.55 else "#111827"
            cells.append(
                f'<td style="background: rgba(37, 99, 235, {share * 0.85:.3f}); color: {ink}">'
                f"{count:,}<small>{share:.0%}</small></td>"
            )
        body.append(f"<tr><th>{_esc(name)}</th>{''.join(cells)}</tr>")
    table = f'<table class="confusion">{head}{"".join(body)}</table>'
    return _figure(s.t("evaluation.confusion"), s.t("evaluation.confusion_help"), table)


def _unit_square(s: _Subject, x_title: str, y_title: str, legend: Sequence[svg.Key], diagonal: bool) -> svg.Plot:
    """A chart over [0, 1] x [0, 1], with the dashed diagonal (chance, or perfect) drawn first when asked."""
    plot = svg.Plot((0.0, 1.0), (0.0, 1.0), x_title=s.say(x_title), y_title=s.say(y_title), legend=legend)
    if diagonal:
        plot.line([0, 1], [0, 1], svg.GREY, dash=True)
    return plot


def _curves(s: _Subject, key: str, axes: tuple[str, str], titles: tuple[str, str], *, chance: bool) -> str:
    """ROC or precision-recall: one line per class the evaluation drew (the positive class for two)."""
    curves = s.ev.get(key, [])
    if not curves:
        return ""
    legend = [svg.Key(str(c["class"]), svg.colour(i)) for i, c in enumerate(curves)]
    legend += [svg.Key(s.say("evaluation.chance"), svg.GREY, "dash")] if chance else []
    plot = _unit_square(s, *titles, legend, diagonal=chance)
    for i, c in enumerate(curves):
        plot.line(c[axes[0]], c[axes[1]], svg.colour(i))
    return _figure(s.t(f"evaluation.{key}"), s.t(f"evaluation.{key}_help"), plot.svg(s.say(f"evaluation.{key}")))


def _calibration(s: _Subject) -> str:
    bins = s.ev.get("calibration", {})
    if not bins.get("confidence"):
        return ""
    model, perfect = svg.Key(s.say("evaluation.this_model"), svg.PALETTE[0], "dot"), s.say("evaluation.perfect")
    plot = _unit_square(
        s, "evaluation.confidence", "evaluation.how_often_right", [model, svg.Key(perfect, svg.GREY, "dash")], True
    )
    plot.line(bins["confidence"], bins["accuracy"], svg.PALETTE[0])
    biggest = max(bins["count"]) or 1
    sizes = [3 + 7 * (c / biggest) ** 0.5 for c in bins["count"]]  # a dot's area grows with the cases in its bin
    plot.dots(bins["confidence"], bins["accuracy"], svg.PALETTE[0], radius=sizes)
    chart = plot.svg(s.say("evaluation.calibration"))
    return _figure(s.t("evaluation.calibration"), s.t("evaluation.calibration_help"), chart)


def _gains(s: _Subject) -> str:
    g = s.ev.get("gains", {})
    if not g.get("share"):
        return ""
    legend = [svg.Key(s.say("evaluation.gain"), svg.PALETTE[0]), svg.Key(s.say("evaluation.chance"), svg.GREY, "dash")]
    plot = _unit_square(s, "evaluation.share_contacted", "evaluation.share_found", legend, diagonal=True)
    plot.line([0.0, *g["share"]], [0.0, *g["gain"]], svg.PALETTE[0])
    return _figure(s.t("report.gain_title"), s.t("report.gain_help"), plot.svg(s.say("report.gain_title")))


def _classifier(s: _Subject) -> list[str]:
    return [
        _confusion(s),
        _curves(s, "roc", ("fpr", "tpr"), ("evaluation.fpr", "evaluation.tpr"), chance=True),
        _curves(s, "pr", ("recall", "precision"), ("evaluation.recall", "evaluation.precision"), chance=False),
        _calibration(s),
        _gains(s),
    ]


def _bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, x_title: str) -> svg.Plot:
    """Bars side by side for each category, one colour per series, from zero."""
    values = [v for _, vs in series for v in vs]
    legend = [svg.Key(name, svg.colour(i), "bar") for i, (name, _) in enumerate(series)]
    plot = svg.Plot(
        (-0.5, len(categories) - 0.5),
        svg.nice(values, zero=True),
        x_title=x_title,
        y_title="",
        legend=legend,
        categories=categories,
    )
    width = 0.8 / len(series)
    for i, (_, vs) in enumerate(series):
        for j, v in enumerate(vs):
            if v is not None:
                left = j - 0.4 + i * width
                plot.bar(left, left + width * 0.92, v, svg.colour(i))
    return plot


def _predicted_vs_actual(s: _Subject) -> str:
    actual, predicted = s.ev.get("actual", []), s.ev.get("predicted", [])
    if not actual:
        return ""
    low, high = svg.nice(actual + predicted)
    legend = [
        svg.Key(s.say("evaluation.points"), svg.PALETTE[0], "dot"),
        svg.Key(s.say("evaluation.perfect"), svg.GREY, "dash"),
    ]
    plot = svg.Plot(
        (low, high),
        (low, high),
        x_title=s.say("evaluation.actual"),
        y_title=s.say("evaluation.predicted"),
        legend=legend,
    )
    plot.line([low, high], [low, high], svg.GREY, dash=True)
    plot.dots(actual, predicted, svg.PALETTE[0])
    chart = plot.svg(s.say("evaluation.pred_vs_actual"))
    return _figure(s.t("evaluation.pred_vs_actual"), s.t("evaluation.pred_vs_actual_help"), chart)


def _residuals(s: _Subject) -> str:
    hist = s.ev.get("residuals", {})
    edges, counts = hist.get("edges", []), hist.get("counts", [])
    if not counts:
        return ""
    x_title, y_title = s.say("evaluation.residual"), s.say("evaluation.cases")
    plot = svg.Plot(svg.nice(edges), svg.nice(counts, zero=True), x_title=x_title, y_title=y_title)
    for left, right, count in zip(edges, edges[1:], counts, strict=False):
        plot.bar(left, right, count, svg.PALETTE[0])
    chart = plot.svg(s.say("evaluation.residual_histogram"))
    return _figure(s.t("evaluation.residual_histogram"), s.t("evaluation.residual_histogram_help"), chart)


def _deciles(s: _Subject) -> str:
    deciles = s.ev.get("deciles", [])
    if not deciles:
        return ""
    series = [
        (s.say("metric.mae"), [d["mae"] for d in deciles]),
        (s.say("evaluation.bias"), [d["bias"] for d in deciles]),
    ]
    plot = _bars([str(i + 1) for i in range(len(deciles))], series, x_title=s.say("report.decile_axis"))
    chart = plot.svg(s.say("evaluation.deciles"))
    return _figure(s.t("evaluation.deciles"), s.t("evaluation.deciles_help"), chart)


def _regressor(s: _Subject) -> list[str]:
    return [_predicted_vs_actual(s), _residuals(s), _deciles(s)]


def _recommender(s: _Subject) -> list[str]:
    m, base = s.run.metrics, s.ev.get("baseline", {})
    keys = [k for k in ("ndcg_at_k", "precision_at_k", "recall_at_k") if m.get(k) is not None]
    if not keys:
        return []
    k = m.get("k", 10)
    series = [
        (s.say("evaluation.this_model"), [m[key] for key in keys]),
        (s.say("evaluation.popularity"), [base.get(key) for key in keys]),
    ]
    plot = _bars([s.label("metric", key) for key in keys], series, x_title=s.say("report.col_metric"))
    title = s.say("evaluation.vs_popularity", k=k)
    intro = _wide(f"<p>{s.t('evaluation.rec_split', users=m.get('test_users', '?'), k=k)}</p>")
    return [intro, _figure(_esc(title), "", plot.svg(title))]


def _generator(s: _Subject) -> list[str]:
    samples = s.ev.get("samples", [])[:SAMPLES]
    if not samples:
        return []
    shown = "".join(f'<p class="sample"><b>{_esc(x["prompt"])}</b>{_esc(x["text"])}</p>' for x in samples)
    return [_wide(f"<p>{s.t('evaluation.perplexity_help')}</p>{shown}")]


def _text_examples(s: _Subject) -> list[str]:
    examples = s.ev.get("examples", [])[:EXAMPLES]
    if not examples:
        return []
    columns = ("text", "true", "predicted", "confidence")
    rows = [[_esc(e["text"]), _esc(e["true"]), _esc(e["predicted"]), f"{e['confidence']:.0%}"] for e in examples]
    table = _table([s.t(f"evaluation.col_{c}") for c in columns], rows, cls="examples")
    return [_wide(f"<h3>{s.t('evaluation.examples')}</h3>{table}")]


def _image_mistakes(s: _Subject) -> list[str]:
    mistakes = s.ev.get("mistakes", [])[: 2 * EXAMPLES]
    if not mistakes:
        return []
    rows = [[_esc(x["label"]), _esc(x["predicted"]), f"{x['confidence']:.0%}"] for x in mistakes]
    header = [s.t(f"evaluation.col_{c}") for c in ("true", "predicted", "confidence")]
    return [_wide(f"<h3>{s.t('evaluation.mistakes')}</h3>{_table(header, rows, cls='examples')}")]


# The task registry's chart names (`models.tasks.CHARTS`), as the report draws them: figures, and wide blocks.
CHARTS: dict[str, Callable[[_Subject], list[str]]] = {
    "classifier": _classifier,
    "regression": _regressor,
    "ranking": _recommender,
    "generation": _generator,
    "text_mistakes": _text_examples,
    "image_mistakes": _image_mistakes,
}


def _metrics(s: _Subject) -> str:
    rows = s.ev.get("rows", {})
    intro = s.t("evaluation.split", test=s.test_rows or rows.get("test", "?"), train=rows.get("train", "?"))
    blocks = [b for name in task_info(s.run.task).charts for b in CHARTS.get(name, lambda _: [])(s) if b]
    grid = f'<div class="charts">{"".join(blocks)}</div>' if blocks else ""
    body = f"<p>{intro}</p>" + _metrics_table(s) + _per_class(s) + grid
    return _section("metrics", s.t("report.metrics_title"), body, new_page=True)


# -- 5. the threshold and what it earns -----------------------------------------------------------------------------
def _profit_chart(s: _Subject, profits: dict[str, Any], chosen: float, currency: str) -> str:
    xs, ys, best = profits["threshold"], profits["profit_per_1000"], profits["best"]
    legend = [
        svg.Key(s.say("decision.profit"), svg.PALETTE[0]),
        svg.Key(s.say("report.chosen"), svg.DARK, "dash"),
        svg.Key(s.say("decision.best"), svg.GREEN, "dot"),
    ]
    axis = s.say("decision.profit_axis", currency=f"({currency})" if currency else "")
    plot = svg.Plot(
        (0.0, 1.0), svg.nice(ys, zero=True), x_title=s.say("decision.threshold"), y_title=axis, legend=legend
    )
    plot.line(xs, ys, svg.PALETTE[0])
    plot.rule(chosen, svg.DARK)
    plot.dots([best], [ys[_nearest(xs, best)]], svg.GREEN, radius=5)
    return _figure(s.t("report.profit_title"), s.t("report.profit_help"), plot.svg(s.say("report.profit_title")))


def _chosen(s: _Subject, store: Store, decision: Decision) -> str:
    """The chosen threshold: the rule it makes, who chose it and why, its costs, what it earns, and the curve."""
    chosen = describe_decision(s.run, decision)
    costs, counts = chosen["costs"], chosen["confusion"]
    currency = costs.get("currency", "")
    rule = s.t(
        "report.decision_rule", positive=chosen["positive"], negative=s.classes[0], threshold=chosen["threshold"]
    )
    lines = [
        s.t(
            "report.decision_who", who=chosen["chosen_by"], when=_when(decision.created_at), why=chosen["reason"] or "—"
        ),
        s.t("report.decision_counts", **counts),
    ]
    values = [
        (s.t("decision.value_tp"), _esc(_money(costs["value_tp"], currency))),
        (s.t("decision.cost_fp"), _esc(_money(costs["cost_fp"], currency))),
        (s.t("decision.cost_fn"), _esc(_money(costs["cost_fn"], currency))),
        (s.t("decision.profit"), f'<b id="expected-profit">{_esc(_money(chosen["expected_profit"], currency))}</b>'),
        (s.t("decision.roi"), "—" if chosen["roi"] is None else f"{chosen['roi']:.0%}"),
        (s.t("decision.flagged"), f"{(counts['tp'] + counts['fp']) / max(sum(counts.values()), 1):.0%}"),
    ]
    chart = ""
    try:
        profits = curve(store, s.run.id, Costs(costs["value_tp"], costs["cost_fp"], costs["cost_fn"], currency))
    except ModelDeckError:  # the test scores are gone (moved, or an old run): the stored outcome still stands
        profits = None
    if profits is not None:
        best = profits["profit_per_1000"][_nearest(profits["threshold"], profits["best"])]
        lines.append(s.t("report.decision_best", best=profits["best"], profit=_money(best, currency)))
        chart = _profit_chart(s, profits, chosen["threshold"], currency)
    return (
        f'<p class="verdict" id="threshold">{rule}</p>'
        + _paragraphs(lines)
        + f'<div class="charts"><div>{_facts(values)}</div>{chart}</div>'  # the money beside its curve
        + f'<p class="note">{s.t("report.decision_note")}</p>'
    )


def _cost_matrix(s: _Subject, decision: Decision) -> str:
    """A multiclass model's cost matrix: the rule it makes, who chose it, the matrix, and what it saves."""
    costs, outcome = decision.costs, decision.outcome
    currency = costs.get("currency", "")
    classes = [str(c) for c in costs.get("classes", s.classes)]
    corner = f"{s.t('evaluation.actual')} ↓ &nbsp; {s.t('report.decided')} →"
    head = f"<tr><th>{corner}</th>" + "".join(f"<th>{_esc(c)}</th>" for c in classes) + "</tr>"
    rows = "".join(
        f"<tr><th>{_esc(name)}</th>" + "".join(f"<td>{_esc(_plain(v))}</td>" for v in row) + "</tr>"
        for name, row in zip(classes, costs.get("matrix", []), strict=False)
    )
    lines = [
        s.t("report.decision_who", who=decision.chosen_by, when=_when(decision.created_at), why=decision.reason or "—"),
        s.t(
            "report.decision_costs_outcome",
            cost=_money(outcome.get("expected_cost", 0.0), currency),
            plain=_money(outcome.get("plain_cost", 0.0), currency),
            saving=_money(outcome.get("saving", 0.0), currency),
        ),
    ]
    return (
        f'<p class="verdict" id="threshold">{s.t("report.decision_costs_rule")}</p>'
        + _paragraphs(lines[:1])
        + f'<table class="confusion costs">{head}{rows}</table>'
        + _paragraphs(lines[1:])
    )


def _decision(s: _Subject, store: Store) -> str:
    if not task_info(s.run.task).classifier:
        body = f"<p>{s.t('report.decision_not_classifier', task=s.task().lower())}</p>"
    elif s.decision is not None and s.decision.threshold is not None:
        body = _chosen(s, store, s.decision)
    elif s.decision is not None:
        body = _cost_matrix(s, s.decision)
    elif len(s.classes) == 2:
        command = f"modeldeck decide {s.run.id} --value-tp V --cost-fp C --cost-fn C"
        body = f"<p>{s.t('report.decision_none', positive=s.classes[1])}</p><p><code>{_esc(command)}</code></p>"
    else:
        body = f"<p>{s.t('report.decision_no_costs')}</p>"
    return _section("decision", s.t("report.decision_title"), body)


# -- 6. what the predictions rest on --------------------------------------------------------------------------------
def _importance(s: _Subject) -> str:
    """The stored permutation importance: the top columns, each with a bar of its drop in the main score."""
    found = saved_importance(s.run)
    if found is None:
        return f"<p>{s.t('report.reasons_none', button=Message.of('explain.importance_compute'))}</p>"
    metric = Message.of(f"metric.{found.metric}")
    intro = s.t("explain.importance_how", repeats=found.repeats, rows=found.rows, metric=metric, score=found.score)
    top = list(found.columns[:TOP_REASONS])
    largest = max((c.drop for c in top), default=0.0)
    if largest <= 0:
        return f"<p>{intro}</p><p>{s.t('explain.importance_none')}</p>"
    rows = [
        [
            str(rank),
            _esc(c.label),
            f'<div class="bar"><span style="width: {max(c.drop, 0) / largest * 100:.1f}%"></span></div>',
            f"{c.drop:.3f} ± {c.spread:.3f}",
        ]
        for rank, c in enumerate(top, start=1)
    ]
    header = ["#", s.t("report.col_column"), "", s.t("explain.importance_axis", metric=metric)]
    ids = [f"reason-{rank}" for rank in range(1, len(top) + 1)]
    return f"<p>{intro}</p>" + _table(header, rows, cls="reasons", ids=ids)


def _words(s: _Subject) -> str:
    """The stored explanation of a text classifier's first example: its words, shaded by their push."""
    found = saved_example(s.run)
    if found is None:
        return f"<p>{s.t('report.reasons_none', button=Message.of('explain.example_compute'))}</p>"
    example = s.ev["examples"][0]
    strongest = max((abs(w.change) for w in found.words), default=0.0) or 1e-9
    spans = " ".join(
        f'<span style="background: rgba({"22, 163, 74" if w.change > 0 else "220, 38, 38"}, '
        f'{min(1.0, abs(w.change) / strongest) * 0.6:.3f})">{_esc(w.text)}</span>'
        for w in found.words
    )
    return (
        _paragraphs(
            [
                s.t("explain.example_intro", true=example["true"], predicted=example["predicted"]),
                s.t("explain.text_intro", cls=found.explained, score=found.score),
            ]
        )
        + f'<p class="words">{spans}</p>'
    )


def _reasons(s: _Subject) -> str:
    task = s.run.task
    if task in TABLE_TASKS:
        body = _importance(s)
    elif reads_text(task) and s.ev.get("examples"):
        body = _words(s)
    elif task == "image-classification":
        body = f"<p>{s.t('report.reasons_image')}</p>"
    else:
        body = f"<p>{s.t('report.reasons_unsupported', task=s.task().lower())}</p>"
    return _section("reasons", s.t("report.reasons_title"), body)


# -- the page -------------------------------------------------------------------------------------------------------
CSS = """
@page { size: A4; margin: 15mm 14mm 16mm;
  @bottom-left { content: FOOTER; font-family: FONTS; font-size: 8pt; color: #6b7280 }
  @bottom-right { content: counter(page) " / " counter(pages); font-family: FONTS; font-size: 8pt; color: #6b7280 } }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact }
body { font-family: FONTS; font-size: 10.5pt; line-height: 1.5; color: #1f2937; max-width: 980px;
  margin: 24px auto; padding: 0 20px }
@media print { body { margin: 0; padding: 0; max-width: none } .new-page h2 { margin-top: 0 } }
h1 { font-size: 21pt; margin: 0 0 2px; color: #111827 }
h2 { font-size: 14pt; margin: 22px 0 8px; padding-bottom: 3px; border-bottom: 2px solid #2563eb; color: #111827;
  break-after: avoid }
h3 { font-size: 11.5pt; margin: 16px 0 6px; break-after: avoid }
p { margin: 5px 0 }
.subtitle { color: #4b5563; margin-bottom: 10px }
.new-page { break-before: page }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 }
.facts dt { color: #4b5563 }
.facts dd { margin: 0 }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 9.5pt }
tr { break-inside: avoid }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #e5e7eb; vertical-align: top }
thead th { background: #f3f4f6; border-bottom: 1px solid #d1d5db }
table.settings td:nth-child(3) { border-left: 1px solid #e5e7eb; padding-left: 10px }
table.confusion { width: auto }
table.confusion td { text-align: center; min-width: 58px }
table.confusion small { display: block; font-size: 8pt; opacity: 0.85 }
table.reasons td:nth-child(3) { width: 40% }
table.metrics td:nth-child(-n + 3), table.metrics th { white-space: nowrap }
.bar { background: #f3f4f6; height: 11px; margin-top: 4px }
.bar span { display: block; height: 100%; background: #16a34a }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px 18px; margin: 12px 0 }
.wide { grid-column: 1 / -1 }
figure { margin: 0; break-inside: avoid }
figcaption { font-size: 9pt; color: #4b5563; margin-bottom: 4px }
figcaption b { color: #111827; display: block; font-size: 10pt }
svg { width: 100%; height: auto; display: block }
ul { padding-left: 20px; margin: 6px 0 }
li { margin: 3px 0 }
ul.glance { list-style: none; padding: 10px 14px; background: #f8fafc; border: 1px solid #e5e7eb }
ul.glance li::before { content: "▸ "; color: #2563eb }
.verdict { font-weight: 600 }
.pass { color: #15803d }
.blocked { color: #b91c1c }
.level { display: inline-block; font-size: 8pt; padding: 0 5px; border-radius: 3px; background: #e5e7eb }
.level.blocker { background: #fee2e2; color: #991b1b }
.level.warning { background: #fef3c7; color: #92400e }
.note { color: #4b5563; font-size: 9pt }
.sample { border-left: 3px solid #e5e7eb; padding-left: 8px; white-space: pre-wrap }
.words span { padding: 1px 2px; border-radius: 3px; line-height: 1.9 }
code { font-size: 9pt }
footer { margin-top: 26px; color: #6b7280; font-size: 8.5pt; border-top: 1px solid #e5e7eb; padding-top: 6px }
"""


def _page(s: _Subject, body: str) -> str:
    footer = s.say("report.page_footer", run_id=s.run.id, dataset=s.dataset_name)
    css = CSS.replace("FONTS", FONTS[s.lang]).replace("FOOTER", _css_string(footer))
    made = s.t("report.footer", version=package_version("modeldeck"), date=_when(datetime.now(UTC)), run_id=s.run.id)
    return (
        f'<!doctype html>\n<html lang="{s.lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{s.t('report.title', dataset=s.dataset_name)}</title>\n<style>{css}</style>\n</head>\n"
        f"<body>\n{body}\n<footer>{made}</footer>\n</body>\n</html>\n"
    )


def report_html(store: Store, run_id: int | str, *, lang: str = "en") -> str:
    """A finished run's report, as one self-contained HTML page in `lang` ("en" or "zh").

    The page holds a summary, the data card (columns, quality verdict), the model card (intended use, training
    data, architecture and settings, limitations), the test metrics with their charts, the chosen threshold and
    what it earns, and what the predictions rest on. It makes no request of any kind: no script, no link, no
    remote image or font.

    Raises:
        NotFound: there is no such run.
        BadInput: the run has no exported model (it has not succeeded), or the language is not one of LANGUAGES.
    """
    if lang not in LANGUAGES:
        raise BadInput("report.error.language", language=lang, languages=", ".join(LANGUAGES))
    run, _ = exported_model(store, run_id)
    s = _subject(store, run, lang)
    sections = [_header, _glance, _data_card, _model_card, _metrics]
    body = "".join(section(s) for section in sections) + _decision(s, store) + _reasons(s)
    return _page(s, body)


# -- the PDF --------------------------------------------------------------------------------------------------------
def pdf_printer() -> str:
    """The Chromium that prints PDFs: the program MODELDECK_CHROMIUM names, else the first of BROWSERS on the PATH.

    Raises:
        BadInput: MODELDECK_CHROMIUM names no program that can run, or no Chromium is on the PATH.
    """
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    if named:
        found = shutil.which(named)
        if found is None:
            raise BadInput("report.error.bad_chromium", path=named, env=CHROMIUM_ENV)
        return found
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        raise BadInput("report.error.no_chromium", names=", ".join(BROWSERS), env=CHROMIUM_ENV)
    return found


def print_pdf(page: str, *, timeout_s: float = PRINT_TIMEOUT_S) -> bytes:
    """An HTML page printed to PDF by headless Chromium (A4, with the page's own margins and footer).

    Chromium runs in a fresh profile with background networking off and every host name unresolvable, so a
    page cannot make it reach out; it and its helpers are killed if it takes longer than `timeout_s`.

    Raises:
        BadInput: no Chromium is found, or it fails or takes too long.
    """
    chromium = pdf_printer()
    with tempfile.TemporaryDirectory(prefix="modeldeck-report-") as folder:
        source, target = Path(folder) / "report.html", Path(folder) / "report.pdf"
        source.write_text(page, encoding="utf-8")
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # as root (in a container) Chromium will not start with its sandbox
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={Path(folder) / 'profile'}",
            "--no-pdf-header-footer",  # the page prints its own footer
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        with subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        ) as browser:
            try:
                status = browser.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)  # the browser and every helper it started
                browser.wait()
                raise BadInput("report.error.chromium_timeout", chromium=chromium, seconds=round(timeout_s)) from None
        printed = target.read_bytes() if target.is_file() else b""
    if status != 0 or not printed.startswith(b"%PDF-"):
        raise BadInput("report.error.chromium_failed", chromium=chromium, status=status)
    return printed


def report_pdf(store: Store, run_id: int | str, *, lang: str = "en") -> bytes:
    """A finished run's report (`report_html`) printed to PDF.

    Raises:
        NotFound: there is no such run.
        BadInput: the run has no exported model, the language is unknown, or Chromium cannot print.
    """
    return print_pdf(report_html(store, run_id, lang=lang))
