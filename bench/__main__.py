"""`make bench`: every benchmark, or the ones named (`python -m bench training quality`)."""

from __future__ import annotations

import importlib
import sys

BENCHES = [
    "training",
    "quality",
    "images",
    "trees",
    "vision",
    "history",
    "serving",
    "scoring",
    "soak",
    "load",
    "minilm",
]


def main() -> None:
    for name in sys.argv[1:] or BENCHES:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
