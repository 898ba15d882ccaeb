"""Errors carry a catalog key and parameters: English for the CLI and logs, the reader's language on a page."""

from __future__ import annotations

import pickle

import pytest

from backend import data
from backend.data import ingest
from backend.errors import BadInput, InvalidState
from backend.i18n import Message, TemplateError


def test_an_error_is_english_for_the_cli_and_chinese_for_a_chinese_page() -> None:
    with pytest.raises(BadInput) as caught:
        ingest.read_table(b"", "empty.csv")
    exc = caught.value
    assert str(exc) == "'empty.csv' is empty. Upload a CSV file with a header row and at least one data row."
    assert exc.text("zh") == "'empty.csv' 为空。请上传包含表头行和至少一行数据的 CSV 文件。"


def test_words_nested_in_an_error_follow_its_language() -> None:
    """'Line 2 of x.jsonl' inside 'is not valid JSON' is rendered in the same language as the sentence."""
    with pytest.raises(BadInput) as caught:
        ingest.read_table(b'{"a": 1}\n[1, 2]\n', "x.jsonl")
    exc = caught.value
    assert str(exc).startswith("Line 2 of 'x.jsonl' is an array, not a JSON object.")
    assert "Line" not in exc.text("zh") and "array" not in exc.text("zh") and "数组" in exc.text("zh")


def test_an_error_keeps_its_key_and_parameters_across_processes() -> None:
    exc = InvalidState("error.runs.not_resumable", run_id=7, run_status=Message.of("status.succeeded"))
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), back.key, str(back), back.text("zh")) == (InvalidState, exc.key, str(exc), exc.text("zh"))
    assert str(back) == "Run 7 is succeeded; only an interrupted run can be resumed."


def test_an_unknown_key_fails_a_test_instead_of_reaching_a_user() -> None:
    with pytest.raises(TemplateError):
        BadInput("error.no_such_message")


def test_a_version_note_is_shown_in_the_readers_language(tmp_path, monkeypatch) -> None:
    from backend import config
    from db import open_store

    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    _, version = data.add_dataset(store, paths=config.paths(), data=b"a;b\n1;2\n3;4\n", filename="t.csv")
    assert data.note_text(version) == "Detected delimiter ';'"
    assert data.note_text(version, "zh") == "检测到分隔符 ';'"
