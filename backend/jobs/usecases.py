"""Use cases: what a model does, for whom, in business words, on the home page.

A use case is made from any finished run (a title, a description, an audience) and stays over that run's model:
the version that serves it is the model's `production` one when a version holds that stage (the registry), else
the run's own. Its quality is said in plain words from that version's test metrics ("right 86 times in 100 on
cases it never saw"), as a catalog message, so every language says it.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend import auth
from backend.errors import BadInput, NotFound
from backend.i18n import Message
from backend.jobs.runs import exported_model
from db import Run, Store, UseCase
from models.tasks import task_info

MAX_TITLE = 120
MAX_AUDIENCE = 120
PRODUCTION = "production"


@dataclass(frozen=True)
class Card:
    """A use case as the home page shows it: the version that serves it, its run and its quality in words."""

    use_case: UseCase
    run: Run  # the run whose export serves it now
    stage: str | None  # "production" when the registry put that version there, else None (the run's own)
    quality: Message


def _checked(title: str, audience: str) -> tuple[str, str]:
    title, audience = title.strip(), audience.strip()
    if not title:
        raise BadInput("error.usecase.no_title")
    if len(title) > MAX_TITLE or len(audience) > MAX_AUDIENCE:
        raise BadInput("error.usecase.too_long", title=MAX_TITLE, audience=MAX_AUDIENCE)
    return title, audience


@auth.guarded("use_case", lambda u: f"use case {u.id}: {u.title}", audited="create_use_case")
def create(store: Store, *, run_id: int | str, title: str, description: str = "", audience: str = "") -> UseCase:
    """A use case over a finished run's model.

    Raises:
        NotFound: no such run.
        BadInput: the run has no exported model, or the title is empty or too long.
    """
    run, _ = exported_model(store, run_id)
    title, audience = _checked(title, audience)
    assert run.model_name is not None, "an exported run has a model name"
    return store.add_use_case(
        title=title, description=description.strip(), audience=audience, model_name=run.model_name, run_id=run.id
    )


@auth.guarded("use_case", lambda u: f"use case {u.id}: {u.title}", audited="update_use_case")
def update(
    store: Store,
    use_case_id: int,
    *,
    title: str | None = None,
    description: str | None = None,
    audience: str | None = None,
    hidden: bool | None = None,
) -> UseCase:
    """Edit a use case's words, or hide it from the home page (or show it again).

    Raises:
        NotFound: no such use case.
        BadInput: an empty or too long title or audience.
    """
    found = {u.id: u for u in store.use_cases(hidden=True)}.get(use_case_id)
    if found is None:
        raise NotFound("error.usecase.no_use_case", use_case_id=use_case_id)
    values: dict[str, object] = {}
    if title is not None or audience is not None:
        values["title"], values["audience"] = _checked(
            found.title if title is None else title, found.audience if audience is None else audience
        )
    if description is not None:
        values["description"] = description.strip()
    if hidden is not None:
        values["hidden"] = hidden
    changed = store.update_use_case(use_case_id, **values)
    assert changed is not None
    return changed


def serving_run(store: Store, use_case: UseCase) -> tuple[Run, str | None]:
    """The run whose export serves a use case now, and "production" when the registry chose it."""
    live = store.current_stages().get(use_case.model_name, {}).get(PRODUCTION)
    if live is not None:
        made = {v.version: v.run_id for v in store.model_versions(use_case.model_name)}
        if live in made:
            run, _ = exported_model(store, made[live])
            return run, PRODUCTION
    run, _ = exported_model(store, use_case.run_id)
    return run, None


def quality(run: Run) -> Message:
    """How good a model is, in words a stakeholder reads, from its test metrics."""
    m, rows = run.metrics, run.metrics.get("test_rows")
    if task_info(run.task).classifier and m.get("accuracy") is not None:
        return Message.of("usecase.quality.classifier", right=round(100 * m["accuracy"]), rows=rows or 0)
    if run.task == "regression" and m.get("mae") is not None:
        return Message.of("usecase.quality.regression", mae=f"{m['mae']:,.3g}", rows=rows or 0)
    if run.task == "recommendation" and m.get("recall_at_k") is not None:
        return Message.of("usecase.quality.recommendation", recall=m["recall_at_k"], k=run.spec.get("top_k", 10))
    if run.task == "text-generation" and m.get("perplexity") is not None:
        return Message.of("usecase.quality.generation", choices=m["perplexity"])
    if run.task == "semantic-search":
        return Message.of("usecase.quality.search", rows=run.evaluation.get("rows", {}).get("indexed", 0))
    return Message.of("usecase.quality.unknown")


def cards(store: Store, *, hidden: bool = False) -> list[Card]:
    """The use cases as the home page shows them, the hidden ones too when asked.

    One whose run is gone (deleted, or its export removed) is left out.
    """
    shown = []
    for use_case in store.use_cases(hidden=hidden):
        try:
            run, stage = serving_run(store, use_case)
        except (NotFound, BadInput):  # its run was deleted, or no longer has an export
            continue
        shown.append(Card(use_case, run, stage, quality(run)))
    return shown
