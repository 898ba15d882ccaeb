"""Ingest: read any table upload (CSV/TSV/TXT, Excel, Parquet, JSON Lines) and any ZIP archive safely.

Four parts: `limits` (what an upload may cost, and the upload as a source of bytes), `encodings` (what a
text file is, its encoding and delimiter), `tables` (one reader per format) and `archives` (ZIP safety).
Parser errors never escape as anything but a one-line `BadInput`.
"""

from backend.data.ingest.archives import ZipMember, iter_zip
from backend.data.ingest.limits import Limits
from backend.data.ingest.tables import TableRead, read_table

__all__ = ["Limits", "TableRead", "ZipMember", "iter_zip", "read_table"]
