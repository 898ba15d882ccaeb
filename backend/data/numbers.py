"""Numbers written for people: "$1,234.50", "€ 12", "-3.5 %", "(1,200)". Parsed, not dropped.

Spreadsheets and exports write amounts with currency signs, thousands separators and percent signs, and a
reader (or pandas) that only knows plain numbers turns the whole column into text, and a "make numeric" fix
then loses every value. `parse_numbers` reads them: currency signs and codes and spaces go, thousands
separators go (a comma before exactly three digits, when a point is the decimal mark), a trailing % divides
by 100 as a spreadsheet does, and accounting parentheses mean a negative amount.
"""

from __future__ import annotations

import re

import pandas as pd

_CURRENCY = re.compile(r"^(?:[$€£¥₹₩₽]|US\$|USD|EUR|GBP|JPY|CNY|RMB|CHF|CA\$|A\$)\s*|\s*(?:[$€£¥₹₩₽]|USD|EUR|GBP|元)$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_FORMATTED = re.compile(r"^[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")


def parse_numbers(values: pd.Series) -> pd.Series:
    """Each value as a float (NaN where it is not a number), formatted numbers included; index kept."""
    plain = pd.to_numeric(values, errors="coerce")
    todo = plain.isna() & values.notna()
    if not todo.any():
        return plain.astype("float64")
    text = values[todo].astype(str).str.strip()
    negative = text.str.fullmatch(r"\(.*\)")
    text = text.where(~negative, text.str.slice(1, -1)).str.strip()
    text = text.str.replace(_CURRENCY, "", regex=True).str.strip()
    percent = text.str.endswith("%")
    text = text.str.rstrip("%").str.strip().str.replace(_CURRENCY, "", regex=True).str.strip()
    text = text.str.replace(_THOUSANDS, "", regex=True).str.replace(" ", "", regex=False)
    parsed = pd.to_numeric(text.where(text.str.fullmatch(_FORMATTED)), errors="coerce")
    parsed = parsed.where(~percent, parsed / 100).where(~negative, -parsed)
    out = plain.astype("float64").copy()
    out[todo] = parsed.astype("float64")
    return out


def formatted_share(values: pd.Series) -> tuple[float, float]:
    """(share parsed as numbers, share that needed formatting removed), over the non-missing values."""
    present = values.dropna()
    if present.empty:
        return 0.0, 0.0
    numbers = parse_numbers(present).notna()
    formatted = numbers & pd.to_numeric(present, errors="coerce").isna()
    return float(numbers.mean()), float(formatted.mean())
