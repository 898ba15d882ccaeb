"""What kind of data a table is: plain `tabular`, `text` or `ratings`.

A `text` table has a text column and a label; a `ratings` table has user, item and rating columns. The kind is
inferred on upload from the column profile; the user can change it.
"""

from __future__ import annotations

import re
from typing import Any

KINDS = ("tabular", "text", "ratings", "images")
_TEXT_TABLE_COLUMNS = 4  # a text, a label and an id or two
_USER = re.compile(r"^(user|customer|client|member|reviewer)(_?id)?$", re.I)
_ITEM = re.compile(r"^(item|product|movie|book|song|article|sku)(_?id)?$", re.I)
_RATING = re.compile(r"^(rating|score|stars|interaction|clicked|purchased)$", re.I)


def _find(columns: list[dict[str, Any]], pattern: re.Pattern[str]) -> str | None:
    return next((c["name"] for c in columns if pattern.match(c["name"])), None)


def roles(columns: list[dict[str, Any]]) -> dict[str, str | None]:
    """The columns that play a part in text and ratings data (None where there is none)."""
    user, item = _find(columns, _USER), _find(columns, _ITEM)
    rating = _find([c for c in columns if c["kind"] == "numeric"], _RATING)
    text = next((c["name"] for c in columns if c["kind"] == "text"), None)
    return {"user": user, "item": item, "rating": rating, "text": text}


def infer(columns: list[dict[str, Any]]) -> str:
    """Ratings with user and item columns; text when a text column is most of the table; tabular otherwise.

    A table of many columns with one free-text column (a customer table with their last review) stays tabular:
    its model reads the text as one feature among the others.
    """
    found = roles(columns)
    if found["user"] and found["item"]:
        return "ratings"
    if found["text"] and len(columns) <= _TEXT_TABLE_COLUMNS:
        return "text"
    return "tabular"
