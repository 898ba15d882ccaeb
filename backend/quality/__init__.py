"""The quality wing: the gate before training, and the fixes that make a new version.

- `common.py`: what every check shares (the result, a remedy, the trainer's split, the first three checks).
- `tables.py`, `texts.py`, `images.py`, `ratings.py`: the checks for each kind of data.
- `gate.py`: run a kind's checks on a version, record the report, score it, say whether it blocks.
- `fixes.py`: apply a check's one-click fix or a relabelling as a new version; lineage and comparison.

Other wings and the faces import from here only.
"""

from backend.quality.common import CheckResult, Context, Remedy
from backend.quality.fixes import (
    REMEDY_ACTIONS,
    apply_check_fix,
    apply_remedy,
    compare_versions,
    lineage,
    relabel,
)
from backend.quality.gate import (
    MEANING_CHECKS,
    Report,
    blockers,
    check_version,
    gate_passed,
    meaning_available,
    run_checks,
    score,
)
from backend.quality.texts import MEANING_SAMPLE

__all__ = [
    "MEANING_CHECKS",
    "MEANING_SAMPLE",
    "REMEDY_ACTIONS",
    "CheckResult",
    "Context",
    "Remedy",
    "Report",
    "apply_check_fix",
    "apply_remedy",
    "blockers",
    "check_version",
    "compare_versions",
    "gate_passed",
    "lineage",
    "meaning_available",
    "relabel",
    "run_checks",
    "score",
]
