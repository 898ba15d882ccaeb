"""Quality checks on text data: a text column and a label. Same contract as the table checks (quality/tables.py).

Near-duplicates are found with SimHash over words and word pairs (64-bit fingerprints cut into 6 bands of
10 bits: two texts whose fingerprints differ in at most 5 bits share a band, so only texts sharing a band
are compared), on at most NEAR_DUP_SAMPLE texts. Near-duplicates are joined into groups (connected
components, as for images), so hundreds of copies of one template are one group: the first text of a group
is kept, the others are the copies.

Texts that say the same in other words are found, when asked for, by the pretrained text model (models/minilm.py):
the cosine similarity of their embeddings (see MEANING_SIMILARITY).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from backend import data
from backend.quality.common import (
    MAX_REMEDY_ROWS,
    Check,
    CheckResult,
    Context,
    drop_rows,
    remedy,
    result,
    target_usable,
    too_few_classes,
    too_few_rows,
    trainer_split,
)

SHORT_CHARS = 10
LONG_CHARS = 5000
NEAR_DUP_SAMPLE = 50_000
NEAR_DUP_BITS = 5
BANDS, BAND_BITS = 6, 10
BUCKET_LEADERS = 200  # a bucket up to this size compares every pair; a larger one compares with this many leaders
EXAMPLES = 5
# Same meaning in other words (only when asked: the pretrained model embeds every sampled text, some texts a
# second on a small CPU). MiniLM puts rewordings of a short sentence at 0.92-0.97, but two different reviews of
# one product as high as 0.83, and "I love this tea" against "I hate this tea" at 0.80, so only pairs at 0.9 or
# more are taken as one text said twice. The first MEANING_TOKENS tokens of a text carry its gist.
MEANING_SAMPLE = 2_000
MEANING_TOKENS = 64
MEANING_SIMILARITY = 0.9

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")
_WORD = re.compile(r"\w+")
_YEARS = re.compile(r"^(?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}$")


def _is_phone(candidate: str) -> bool:
    """7 to 15 digits, and not a range of years such as 2010-2011."""
    return 7 <= len(re.sub(r"\D", "", candidate)) <= 15 and not _YEARS.match(candidate.strip())


def _text_column(frame: pd.DataFrame, target: str | None) -> str | None:
    columns = [
        {
            "name": c,
            "kind": "text"
            if not pd.api.types.is_numeric_dtype(frame[c])
            and c != target
            and frame[c].astype("string").str.len().mean() >= 20
            else "other",
        }
        for c in frame.columns
    ]
    return data.roles(columns)["text"]


def _texts(frame: pd.DataFrame, target: str | None) -> tuple[str | None, pd.Series]:
    column = _text_column(frame, target)
    if column is None:
        return None, pd.Series([], dtype="string")
    return column, frame[column].astype("string").fillna("")


def _normalised(texts: pd.Series) -> pd.Series:
    return texts.str.lower().str.replace(r"<[^>]+>", " ", regex=True).str.replace(r"\W+", " ", regex=True).str.strip()


def luhn_ok(digits: str) -> bool:
    """The card-number checksum: double every second digit from the right; the sum ends in 0."""
    numbers = [int(d) for d in digits][::-1]
    total = sum(numbers[0::2]) + sum(sum(divmod(2 * d, 10)) for d in numbers[1::2])
    return len(numbers) >= 13 and total % 10 == 0


def simhash(text: str) -> int:
    """64-bit SimHash: each bit is the majority vote of that bit over the hashes of the words and word pairs."""
    words = _WORD.findall(text.lower()) or [""]
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    digests = b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 8), axis=1)
    majority = bits.sum(axis=0) * 2 > len(grams)
    return int.from_bytes(np.packbits(majority).tobytes(), "big")


def _bucket_links(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of positions in one bucket's distinct `values` that are at most NEAR_DUP_BITS bits apart.

    A bucket of up to BUCKET_LEADERS values compares every pair. A larger one (many copies of one template)
    compares each value with leaders only: the first value near no leader yet becomes the next leader, up to
    BUCKET_LEADERS of them, so the work stays linear in the bucket's size. A value with a near neighbour is
    still linked (a leader is compared with every value; a follower is near its leader); only the links
    between two followers are skipped, which can leave a group in two parts.
    """
    if len(values) <= BUCKET_LEADERS:
        close = np.bitwise_count(values[:, None] ^ values[None, :]) <= NEAR_DUP_BITS
        i, j = np.nonzero(np.triu(close, k=1))
        return i, j
    covered = np.zeros(len(values), dtype=bool)
    leaders, followers = [], []
    for _ in range(BUCKET_LEADERS):
        if covered.all():
            break
        leader = int(np.argmin(covered))  # the first value near no leader yet
        near = np.flatnonzero(np.bitwise_count(values ^ values[leader]) <= NEAR_DUP_BITS)
        covered[near] = True
        leaders.append(np.full(len(near), leader))
        followers.append(near)
    return np.concatenate(leaders), np.concatenate(followers)


def near_duplicate_groups(texts: list[str]) -> np.ndarray:
    """For each text, the position of the first text of its near-duplicate group (its own when it has none).

    1. Texts with equal fingerprints are one value, so a bucket holds each fingerprint once.
    2. Values that share a band value (a bucket) are linked when at most NEAR_DUP_BITS bits apart (see
       `_bucket_links`); a bucket of any size is compared.
    3. The groups are the connected components of the links.
    """
    if not texts:
        return np.zeros(0, dtype=np.int64)
    values, inverse = np.unique(np.array([simhash(t) for t in texts], dtype=np.uint64), return_inverse=True)
    a, b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for band in range(BANDS):
        keys = (values >> np.uint64(BAND_BITS * band)) & np.uint64((1 << BAND_BITS) - 1)
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
            if end - start > 1:
                members = order[start:end]
                i, j = _bucket_links(values[members])
                a.append(members[i])
                b.append(members[j])
    group = components(len(values), np.concatenate(a), np.concatenate(b))[inverse.ravel()]
    return first_in_group(group)


def components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The group number of each of `count` items linked in pairs (a[k], b[k]): the connected components."""
    from scipy.sparse import coo_matrix  # imported here: a tabular report need not load it
    from scipy.sparse.csgraph import connected_components

    return connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(count, count)), directed=False)[1]


def first_in_group(group: np.ndarray) -> np.ndarray:
    """For each item, the position of the first item with its group number."""
    _, first = np.unique(group, return_index=True)  # the first position of each group, by group number
    return first[group]


def same_meaning_groups(vectors: np.ndarray, threshold: float = MEANING_SIMILARITY) -> np.ndarray:
    """For each unit-length embedding, the position of the first of its group (linked: cosine >= `threshold`)."""
    i, j = np.nonzero(np.triu(vectors @ vectors.T >= threshold, k=1))
    return first_in_group(components(len(vectors), i, j))


# The checks ---------------------------------------------------------------------------------------------
def text_length(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    column, texts = _texts(frame, target)
    if column is None:
        return result("text_length", "blocker", False, "none")
    lengths = texts.str.strip().str.len()
    short, long = lengths < SHORT_CHARS, lengths > LONG_CHARS
    evidence = {
        "column": column,
        "short": int(short.sum()),
        "long": int(long.sum()),
        "example_rows": np.flatnonzero(short | long)[:EXAMPLES].tolist(),
        "length_quantiles": {f"p{q}": int(lengths.quantile(q / 100)) for q in (5, 50, 95)},
    }
    if short.any() or long.any():
        return result(
            "text_length",
            "warning",
            False,
            "fail",
            evidence,
            short=int(short.sum()),
            long=int(long.sum()),
            min=SHORT_CHARS,
            max=LONG_CHARS,
            remedy=drop_rows(np.flatnonzero(short)) if short.any() else None,
        )
    return result("text_length", "warning", True, "ok", evidence, median=int(lengths.median()))


def duplicate_texts(ctx: Context) -> CheckResult:
    frame, target, task = ctx.frame, ctx.target, ctx.task
    column, texts = _texts(frame, target)
    if column is None:
        return result("duplicate_texts", "warning", True, "na")
    norm = _normalised(texts)
    exact = norm.duplicated(keep="first") & (norm != "")
    sample = texts.iloc[:NEAR_DUP_SAMPLE].tolist()
    first = near_duplicate_groups(sample)
    # A copy whose normalised text was seen before is an exact copy, counted once, as such.
    copies = (first != np.arange(len(sample))) & ~norm.iloc[: len(sample)].duplicated().to_numpy()
    near_rows: list[int] = np.flatnonzero(copies).tolist()
    evidence = {
        "column": column,
        "exact": int(exact.sum()),
        "near": len(near_rows),
        "across_splits": _across_splits(frame, target, task, norm, first),
        "example_rows": (np.flatnonzero(exact)[:EXAMPLES].tolist() + near_rows[:EXAMPLES])[: 2 * EXAMPLES],
        "near_pairs": [(int(first[b]), b) for b in near_rows[:EXAMPLES]],
        "sampled_rows": len(sample),
    }
    if exact.any() or near_rows:
        drop = sorted(set(np.flatnonzero(exact).tolist()) | set(near_rows))
        return result(
            "duplicate_texts",
            "warning",
            False,
            "fail",
            evidence,
            exact=int(exact.sum()),
            near=len(near_rows),
            across=evidence["across_splits"],
            remedy=drop_rows(drop),
        )
    return result("duplicate_texts", "warning", True, "ok", evidence)


def same_meaning(ctx: Context) -> CheckResult:
    """Texts that say what an earlier text says in other words (see MEANING_SIMILARITY).

    Only beyond the copies `duplicate_texts` finds by their words, on the first MEANING_SAMPLE texts.
    """
    from models import minilm  # imported here: TensorFlow and the model load only when this check is asked for

    frame, target, task = ctx.frame, ctx.target, ctx.task
    column, texts = _texts(frame, target)
    if column is None:
        return result("same_meaning", "warning", True, "na")
    sample = texts.iloc[:MEANING_SAMPLE]
    norm = _normalised(texts)
    kept = np.flatnonzero((~norm.iloc[: len(sample)].duplicated() & (norm.iloc[: len(sample)] != "")).to_numpy())
    vectors = minilm.load(sequence_length=MEANING_TOKENS).embed(sample.iloc[kept].tolist(), progress=ctx.progress)
    first = np.arange(len(sample))
    first[kept] = kept[same_meaning_groups(vectors)]
    by_words = near_duplicate_groups(sample.tolist())
    said_again = np.flatnonzero((first != np.arange(len(sample))) & (by_words == np.arange(len(sample))))
    rows: list[int] = said_again.tolist()
    evidence = {
        "column": column,
        "same_meaning": len(rows),
        "similarity": MEANING_SIMILARITY,
        "across_splits": _across_splits(frame, target, task, norm, first) if rows else 0,
        "example_rows": sorted({r for b in rows[:EXAMPLES] for r in (int(first[b]), b)}),
        "near_pairs": [(int(first[b]), b) for b in rows[:EXAMPLES]],
        "sampled_rows": len(sample),
    }
    if rows:
        return result(
            "same_meaning",
            "warning",
            False,
            "fail",
            evidence,
            n=len(rows),
            across=evidence["across_splits"],
            similarity=MEANING_SIMILARITY,
            remedy=drop_rows(rows),
        )
    return result("same_meaning", "warning", True, "ok", evidence, sampled=len(sample))


def _across_splits(
    frame: pd.DataFrame, target: str | None, task: str | None, norm: pd.Series, first: np.ndarray
) -> int:
    """How many texts in the test split have a copy among the training rows, in the trainer's own split.

    A copy is exact, or near: in the group `first` of a sampled training text.
    """
    if target is None or frame[target].notna().sum() < 10:
        return 0
    _, test = trainer_split(frame, target=target, task=task)
    in_test = np.zeros(len(frame), dtype=bool)
    in_test[test] = True
    labelled = frame[target].notna().to_numpy()
    train_texts = set(norm[labelled & ~in_test])
    exact_leaks = {int(i) for i in np.flatnonzero(in_test) if norm.iloc[i] and norm.iloc[i] in train_texts}
    sampled = len(first)
    train_groups = first[labelled[:sampled] & ~in_test[:sampled]]
    near = in_test[:sampled] & labelled[:sampled] & (norm.iloc[:sampled] != "").to_numpy()
    near_leaks = set(np.flatnonzero(near & np.isin(first, train_groups)).tolist())
    return len(exact_leaks | near_leaks)


def conflicting_text_labels(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    column, texts = _texts(frame, target)
    if column is None or target is None:
        return result("conflicting_text_labels", "warning", True, "na")
    norm = _normalised(texts)
    labels = frame[target].astype("string")
    per_text = pd.DataFrame({"t": norm, "y": labels}).groupby("t")["y"].nunique()
    conflicted = norm.isin(per_text[per_text > 1].index) & (norm != "")
    rows = np.flatnonzero(conflicted)
    evidence = {
        "conflicting": int(len(rows)),
        "rows": rows[:MAX_REMEDY_ROWS].tolist(),
        "example_rows": rows[:EXAMPLES].tolist(),
    }
    if len(rows):
        return result(
            "conflicting_text_labels",
            "warning",
            False,
            "fail",
            evidence,
            n=int(len(rows)),
            remedy=remedy("review_labels"),
        )
    return result("conflicting_text_labels", "warning", True, "ok", evidence)


def personal_data(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    column, texts = _texts(frame, target)
    if column is None:
        return result("personal_data", "warning", True, "na")
    emails = texts.str.contains(_EMAIL, regex=True)
    without_cards = texts.str.replace(_CARD, " ", regex=True)  # a card number also looks like a phone number
    phones = without_cards.map(lambda text: any(_is_phone(m) for m in _PHONE.findall(text)))
    candidates = texts[texts.str.contains(_CARD, regex=True)]
    cards = pd.Series(False, index=texts.index)
    for index, text in candidates.items():
        cards[index] = any(luhn_ok(re.sub(r"\D", "", m)) for m in _CARD.findall(text))
    counts = {"email": int(emails.sum()), "phone": int(phones.sum()), "card": int(cards.sum())}
    rows = np.flatnonzero(emails | phones | cards)
    evidence = {"by_kind": counts, "example_rows": rows[:EXAMPLES].tolist()}
    if len(rows):
        return result(
            "personal_data",
            "warning",
            False,
            "fail",
            evidence,
            n=int(len(rows)),
            email=counts["email"],
            phone=counts["phone"],
            card=counts["card"],
            remedy=drop_rows(rows),
        )
    return result("personal_data", "warning", True, "ok", evidence)


CHECKS: list[Check] = [
    target_usable,
    too_few_rows,
    too_few_classes,
    text_length,
    duplicate_texts,
    same_meaning,
    conflicting_text_labels,
    personal_data,
]
