"""The arrows in DESIGN.md hold: the dashboard never loads TensorFlow, the backend has no import circle,
and the catalog is complete."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import string
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from backend import i18n as messages

ROOT = Path(__file__).resolve().parent.parent


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_dashboard_process_never_imports_tensorflow() -> None:
    modules = sorted(
        {
            m
            for p in (ROOT / "dashboard").rglob("*.py")
            for m in _imports_of(p)
            if m.split(".")[0] in ("backend", "dashboard")
        }
    )
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + (
            "heavy = sorted(m for m in sys.modules\n"
            "                if m.split('.')[0] in ('tensorflow', 'keras', 'tensorflow_serving'))\n"
            "print(heavy)\n"
        )
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_linter_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def _circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm): each holds a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return groups


def _backend_imports() -> dict[str, set[str]]:
    graph = grimp.build_graph("backend", cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def test_the_backend_has_no_import_circle() -> None:
    assert _circles(_backend_imports()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    imports = _backend_imports()
    imports["backend.jobs.training"] = imports["backend.jobs.training"] | {"backend.jobs.tuning"}  # the old circle
    assert ["backend.jobs.training", "backend.jobs.tuning"] in _circles(imports)


def test_a_bad_template_raises_in_tests_and_renders_raw_for_users(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(messages.TemplateError, match="cannot be filled"):
        messages.render("en", "check.too_few_rows.fail", rows=3)  # {min} is missing
    with pytest.raises(messages.TemplateError, match="No message 'no.such.key'"):
        messages.render("zh", "no.such.key")
    monkeypatch.delenv("MODELDECK_STRICT_MESSAGES")
    assert messages.render("en", "check.too_few_rows.fail", rows=3) == messages.EN["check.too_few_rows.fail"]
    assert messages.render("zh", "no.such.key") == "no.such.key"


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_english_and_chinese_catalogs_have_the_same_keys_and_placeholders() -> None:
    assert set(messages.EN) == set(messages.ZH)
    mismatched = [k for k in messages.EN if _placeholders(messages.EN[k]) != _placeholders(messages.ZH[k])]
    assert mismatched == []


def test_every_catalog_key_used_by_the_dashboard_exists() -> None:
    used = set()
    for path in (ROOT / "dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                used.add(node.args[0].value)
    assert sorted(used - set(messages.EN)) == []


def test_chinese_text_is_actually_chinese() -> None:
    latin_only = [
        k
        for k, v in messages.ZH.items()
        if v == messages.EN[k]
        and any(c.isalpha() for c in v)
        and not re.fullmatch(r"\{\w+\}", v)  # words stored or sent as they are, e.g. an old note
        and k not in {"metric.roc_auc", "metric.r2", "runs.roc_auc", "runs.r2", "metric.ndcg_at_k", "runs.ndcg_at_k"}
        and k != "playground.prompt_default"  # the sample generator learned English reviews: prompt it in English
    ]
    assert latin_only == []


@pytest.mark.parametrize("door", ["backend.data", "backend.quality", "backend.jobs", "backend.serving", "backend.i18n"])
def test_every_function_and_class_a_door_hands_on_says_what_it_does(door: str) -> None:
    """A wing's door is what the rest of the code reads: each name it exports has a docstring (Google style,
    checked by ruff's D rules), whose first line is one sentence."""
    module = importlib.import_module(door)
    undocumented = []
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isfunction(value) or inspect.isclass(value)) or not value.__module__.startswith("backend"):
            continue  # constants, and names handed on from elsewhere (a db record, a registry entry)
        summary = (inspect.getdoc(value) or "").split("\n\n")[0]
        if not summary or not summary.rstrip().endswith((".", "?", ":", ")")):
            undocumented.append(name)
    assert undocumented == []
