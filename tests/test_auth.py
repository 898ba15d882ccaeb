"""Who may do what: accounts and passwords, sessions that expire, roles checked by the services themselves (called
here as each role), the audit log, and the dashboard's sign-in."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from backend import auth, data, jobs, serving
from backend.errors import BadInput, Forbidden
from backend.serving import keys
from db.store import utcnow
from tests import factories

PASSWORD = "correct horse battery"
VIEWER = auth.Actor("vera", "viewer", "test")
EDITOR = auth.Actor("ed", "editor", "test")
ADMIN = auth.Actor("ada", "admin", "test")


def _csv(folder: Path) -> Path:
    path = folder / "churn.csv"
    factories.churn_frame().to_csv(path, index=False)
    return path


# -- passwords and accounts --------------------------------------------------------------------------------------
def test_a_password_is_kept_as_a_salted_memory_hard_hash() -> None:
    first, second = auth.hash_password(PASSWORD), auth.hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and first != second and PASSWORD not in first
    assert auth.password_matches(PASSWORD, first) and auth.password_matches(PASSWORD, second)
    assert not auth.password_matches(PASSWORD + "!", first) and not auth.password_matches(PASSWORD, "garbage")


def test_only_an_admin_adds_accounts_and_bad_ones_are_refused(store: Any) -> None:
    with auth.acting_as(EDITOR), pytest.raises(Forbidden) as refused:
        auth.add_user(store, "ana", role="viewer", password=PASSWORD)
    assert str(refused.value) == (
        "ed is a editor here, and this needs an admin (or higher): ask an admin to do it, or to give you that role."
    )
    with auth.acting_as(ADMIN):
        made = auth.add_user(store, "ana", role="editor", password=PASSWORD)
        for name, role, password, key in (
            ("ana", "editor", PASSWORD, "error.auth.name_taken"),
            ("bob", "owner", PASSWORD, "error.auth.bad_role"),
            ("bob", "viewer", "short", "error.auth.short_password"),
            ("bo b", "viewer", PASSWORD, "error.auth.bad_name"),
        ):
            with pytest.raises(BadInput) as caught:
                auth.add_user(store, name, role=role, password=password)
            assert caught.value.key == key
    assert (made.name, made.role) == ("ana", "editor")
    assert [u.name for u in store.users()] == ["ana"]


# -- signing in, sessions ------------------------------------------------------------------------------------------
def test_a_session_stands_for_its_account_until_it_expires_is_ended_or_the_account_changes(store: Any) -> None:
    with auth.acting_as(ADMIN):
        auth.add_user(store, "ana", role="editor", password=PASSWORD)
    token, actor = auth.sign_in(store, "ana", PASSWORD, source="dashboard 10.0.0.7")
    assert actor == auth.Actor("ana", "editor", "dashboard 10.0.0.7")
    assert auth.session_actor(store, token, source="x") == auth.Actor("ana", "editor", "x")
    assert auth.session_actor(store, "not-a-token", source="x") is None

    with store.engine.begin() as conn:  # twelve hours later
        conn.exec_driver_sql("update sessions set expires_at = ?", (utcnow() - timedelta(seconds=1),))
    assert auth.session_actor(store, token, source="x") is None

    token, _ = auth.sign_in(store, "ana", PASSWORD, source="x")
    with auth.acting_as(ADMIN):
        auth.set_password(store, "ana", PASSWORD + " two")
    assert auth.session_actor(store, token, source="x") is None, "a new password ends the sessions"
    token, _ = auth.sign_in(store, "ana", PASSWORD + " two", source="x")
    auth.sign_out(store, token)
    assert auth.session_actor(store, token, source="x") is None
    token, _ = auth.sign_in(store, "ana", PASSWORD + " two", source="x")
    with auth.acting_as(ADMIN):
        auth.disable(store, "ana")
    assert auth.session_actor(store, token, source="x") is None, "a disabled account's sessions end"
    with pytest.raises(BadInput):
        auth.sign_in(store, "ana", PASSWORD + " two", source="x")


def test_a_wrong_name_and_a_wrong_password_get_the_same_answer_and_are_audited(store: Any) -> None:
    with auth.acting_as(ADMIN):
        auth.add_user(store, "ana", role="editor", password=PASSWORD)
    answers = []
    for name, password in (("ana", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(BadInput) as caught:
            auth.sign_in(store, name, password, source="dashboard 10.0.0.9")
        answers.append(str(caught.value))
    assert answers[0] == answers[1]
    failed = [(e.actor, e.source) for e in store.audit_log() if e.action == "sign_in_failed"]
    assert failed == [("nobody", "dashboard 10.0.0.9"), ("ana", "dashboard 10.0.0.9")]


# -- roles, checked by the services ----------------------------------------------------------------------------------
def test_each_role_may_do_what_it_should_and_nothing_more(home: Path, store: Any) -> None:
    """The services refuse by themselves: a viewer cannot upload or train, an editor cannot promote or make keys."""
    from backend import config

    paths = config.paths()
    csv_path = _csv(home)
    with auth.acting_as(VIEWER), pytest.raises(Forbidden):
        data.add_source(store, paths=paths, source=str(csv_path), name="churn", target="churn")
    with auth.acting_as(EDITOR):
        _, version = data.add_source(store, paths=paths, source=str(csv_path), name="churn", target="churn")
        run = jobs.start_training(store, version=version, preset="fast")
    with auth.acting_as(VIEWER), pytest.raises(Forbidden):
        jobs.start_training(store, version=version, preset="fast")
    with auth.acting_as(VIEWER), pytest.raises(Forbidden):
        jobs.cancel(store, run_id=run.id)
    with auth.acting_as(EDITOR):
        jobs.cancel(store, run_id=run.id)
        with pytest.raises(Forbidden):
            keys.create(store, "crm")
        with pytest.raises(Forbidden):
            auth.log(store)
    with auth.acting_as(ADMIN):
        keys.create(store, "crm")
        entries = auth.log(store)
    assert [(e.actor, e.role, e.action) for e in reversed(entries)] == [
        ("ed", "editor", "add_source"),
        ("ed", "editor", "start_training"),
        ("ed", "editor", "cancel_run"),
        ("ada", "admin", "create_key"),
    ], "refused calls change nothing and are not logged as changes"
    assert entries[-1].target.startswith("churn @ ") and entries[-2].target == f"run {run.id}"


def test_an_editor_cannot_promote_and_an_admin_can(churn_run: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    from db import open_store

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        run = store.get_run(churn_run["run_id"])
        with auth.acting_as(EDITOR), pytest.raises(Forbidden):
            serving.promote(store, run.model_name, run.model_version, stage="production")
        with auth.acting_as(ADMIN):
            change = serving.promote(store, run.model_name, run.model_version, stage="production", reason="ok")
        (entry,) = [e for e in store.audit_log() if e.action == "promote"]
    finally:
        store.close()
    assert change.stage == "production"
    assert (entry.actor, entry.target) == ("ada", f"{run.model_name} v{run.model_version} production")


def test_a_service_calling_another_is_logged_once(home: Path, store: Any) -> None:
    from backend import config

    with auth.acting_as(EDITOR):
        data.add_samples(store, paths=config.paths())
    actions = [e.action for e in store.audit_log()]
    assert actions == ["add_samples"], actions


def test_the_audit_log_goes_out_as_csv(store: Any) -> None:
    with auth.acting_as(ADMIN):
        auth.add_user(store, "ana", role="viewer", password=PASSWORD)
        auth.set_role(store, "ana", "editor")
        rows = list(csv.reader(io.StringIO(auth.log_csv(store).decode())))
    assert rows[0] == ["at", "actor", "role", "action", "target", "source", "detail"]
    assert [r[1:5] for r in rows[1:]] == [["ada", "admin", "set_role", "ana"], ["ada", "admin", "add_user", "ana"]]


def test_the_cli_manages_accounts_and_shows_the_log(home: Path) -> None:
    added = factories.cli(home, "users", "add", "ana", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = factories.cli_json(home, "users", "list")
    logged = factories.cli_json(home, "audit")
    factories.cli_json(home, "audit", "--csv", str(home / "audit.csv"))
    assert listed["users"] == [{"name": "ana", "role": "editor", "disabled": False}]
    assert [(e["action"], e["target"], e["role"]) for e in logged["entries"]] == [("add_user", "ana", "admin")]
    assert logged["entries"][0]["source"].startswith("local ")
    assert (home / "audit.csv").read_text().splitlines()[0] == "at,actor,role,action,target,source,detail"


# -- the dashboard -----------------------------------------------------------------------------------------------
def _page(page: str | None = None) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def test_with_sign_in_on_the_dashboard_asks_who_you_are_and_shows_your_role_s_pages(
    home: Path, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_SIGN_IN", "1")
    with auth.acting_as(ADMIN):
        auth.add_user(store, "vera", role="viewer", password=PASSWORD)
    at = _page()
    assert [t.value for t in at.title] == ["Sign in"] and not at.exception
    at.text_input[0].input("vera")
    at.text_input[1].input("wrong password")
    [submit] = [b for b in at.button if b.label == "Sign in"]
    submit.click().run()
    assert [e.value for e in at.error] == [
        "That name and password do not match an account here. Check both, or ask an admin to reset your password."
    ]
    at.text_input[1].input(PASSWORD)
    [submit] = [b for b in at.button if b.label == "Sign in"]
    submit.click().run()
    assert not at.exception and [t.value for t in at.title] == ["Use cases"]
    assert "Signed in as vera (viewer)" in [c.value for c in at.sidebar.caption]
    # The viewer's menu: the models' pages, no Data, Training or Admin (and the services refuse them anyway).
    for page in ("views/data.py", "views/training.py", "views/admin.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    at.switch_page("views/evaluation.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Evaluation"]


def test_without_sign_in_the_dashboard_acts_for_the_machine_s_user(home: Path, store: Any) -> None:
    at = _page("views/admin.py")
    assert not at.exception and [t.value for t in at.title] == ["Admin"]
    assert [s.value for s in at.subheader] == ["Accounts", "Audit log", "Delete"]
