"""Columns a table model reads beyond numbers and categories: dates and times, and free text.

Both become numbers inside the exported graph (`models/derived.py`), with standard TensorFlow ops only, so a
client sends a column as the user wrote it ("2024-03-05", "03/05/2024 14:30", "Great product, slow delivery")
and a stock TensorFlow Serving runs the model. This module holds what needs no TensorFlow: recognising a date
column and naming the numbers, so a data upload can use it without loading TensorFlow.

- A date becomes its calendar: year, month, day of the month, day of the week (Monday 0), hour, and days
  since 1970-01-01 (time of day included). Which field is the day and which the month ("ymd", "mdy", "dmy")
  is read from the training rows once (`date_order`) and kept in the plan.
- Free text becomes TF-IDF weights over its most frequent words in the training rows (Chinese characters
  count as words), L2-normalised per row as scikit-learn's TfidfVectorizer does. With `text_encoding=meaning`
  it becomes the pretrained encoder's sentence embedding instead (`models/minilm.py`, 384 numbers): texts
  that say the same in other words get like numbers, which word weights cannot give them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd

DATE_PARTS = ("year", "month", "day", "weekday", "hour", "days")
TEXT_WORDS = 200  # words kept per text column
_DATE_SHARE = 0.95  # the share of values that must read as dates for a column to be one

# A date, an optional time, an optional UTC offset. The same pattern runs in RE2 (TensorFlow) and in Python.
DATE = (
    r"\s*(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})"  # the date, in the column's order
    r"(?:[ T](\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?)?"  # hour and minute (seconds are read, not used)
    r"\s*(?:Z|[+-]\d{2}:?\d{2})?\s*"  # an offset, ignored: the time is read as written
)


def date_order(values: pd.Series) -> str | None:
    """The order of a date column's fields, "ymd", "mdy" or "dmy", or None when it is not a date column.

    Nearly all present values must read as dates written that way. A four-digit first field is year-month-day.
    Otherwise the year is last, and a first field above 12 means day-month-year; month-day-year is assumed
    when nothing tells the two apart (as spreadsheets do in the US).
    """
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present) or present.empty:
        return None
    sample = present.astype(str)
    if len(sample) > 5000:
        sample = sample.sample(5000, random_state=0)
    fields = sample.str.fullmatch(DATE)
    if fields.mean() < _DATE_SHARE:
        return None
    parts = sample[fields].str.extract(DATE).iloc[:, :3]
    a, b = parts[0].astype(int), parts[1].astype(int)
    if (parts[0].str.len() == 4).mean() >= _DATE_SHARE:
        order, month, day = "ymd", b, parts[2].astype(int)
    elif (parts[2].str.len().isin([2, 4])).mean() >= _DATE_SHARE:
        order, month, day = ("dmy", b, a) if (a > 12).any() else ("mdy", a, b)
    else:
        return None
    valid = month.between(1, 12) & day.between(1, 31)
    return order if valid.sum() >= _DATE_SHARE * len(sample) else None


def read_date(value: object, order: str) -> dt.date | None:
    """A date value as written in a column of this order, as a date (None when it is not one)."""
    found = re.fullmatch(DATE, str(value)) if value is not None else None
    if not found:
        return None
    a, b, c = (int(found.group(i)) for i in (1, 2, 3))
    y, m, d = {"ymd": (a, b, c), "mdy": (c, a, b), "dmy": (c, b, a)}[order]
    try:
        return dt.date(y + 2000 if y < 100 else y, m, d)
    except ValueError:
        return None


def write_date(day: dt.date, order: str) -> str:
    """A date written as its column writes them, so the model reads it as it read the training rows."""
    y, m, d = f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"
    return {"ymd": f"{y}-{m}-{d}", "mdy": f"{m}/{d}/{y}", "dmy": f"{d}/{m}/{y}"}[order]


def text_width(encoding: dict[str, Any]) -> int:
    """How many numbers a text column becomes: a weight per kept word, or the embedding's size."""
    return int(encoding["dimension"]) if "meaning" in encoding else len(encoding["words"])


def feature_names(dates: dict[str, str], texts: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The name of each derived number, per column: "signup_date.month", "review[delivery]", "review~7" (the
    eighth number of the review's embedding)."""
    names = {name: [f"{name}.{part}" for part in DATE_PARTS] for name in dates}
    return names | {
        name: [f"{name}~{i}" for i in range(text_width(v))] if "meaning" in v else [f"{name}[{w}]" for w in v["words"]]
        for name, v in texts.items()
    }
