"""In a real browser, a dashboard that asks who you are: sign in as an editor, meet the backend's refusal of what an
editor may not do, sign out; an admin reads the audit log. In English and Chinese.

Its own `modeldeck ui`, with MODELDECK_SIGN_IN=1 (what listening beyond loopback sets), on loopback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, STEP_MS, VIEWPORT, App, go_to, settled, shot

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
Page = playwright_sync.Page

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


def _add_user(home: Path, name: str, role: str) -> None:
    done = factories.cli(home, "users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    root = tmp_path_factory.mktemp("modeldeck-signin")
    home, log = root / "home", root / "ui.log"
    home.mkdir()
    _add_user(home, "ed", "editor")
    _add_user(home, "ada", "admin")
    with factories.running_ui(home, log=log, env={"MODELDECK_SIGN_IN": "1"}) as (_, url, serving_url, _scoring):
        yield App(url=url, serving_url=serving_url, home=home, log=log)


@pytest.fixture
def page(app: App) -> Iterator[Page]:
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        context.set_default_timeout(STEP_MS)
        yield context.new_page()
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MODELDECK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, name: str, password: str, *, button: str = "Sign in") -> None:
    page.get_by_role("textbox", name=re.compile(r"^(Name|用户名)$")).fill(name)
    page.get_by_role("textbox", name=re.compile(r"^(Password|密码)$")).fill(password)
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name=button).click()


def test_an_editor_signs_in_sees_an_editor_s_pages_and_signs_out(app: App, page: Page, shots: Path) -> None:
    page.goto(f"{app.url}/?lang=en")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    shot(page, shots, "30-sign-in")
    sign_in(page, "ed", "not the password")
    expect(page.get_by_text(re.compile(r"^That name and password do not match an account here\."))).to_be_visible()
    settled(page)
    sign_in(page, "ed", PASSWORD)
    expect(page.get_by_role("heading", name="Use cases", exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as ed (editor)")).to_be_visible()
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link", name="Training", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    settled(page)
    shot(page, shots, "31-signed-in-editor")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()


def test_an_admin_reads_the_audit_log_in_chinese(app: App, page: Page, shots: Path) -> None:
    page.goto(f"{app.url}/?lang=zh")
    expect(page.get_by_role("heading", name="登录", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    sign_in(page, "ada", PASSWORD, button="登录")
    expect(page.get_by_text("已登录：ada（管理员）")).to_be_visible()
    go_to(page, "管理", "admin", "管理")
    expect(page.get_by_role("heading", name="审计日志", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="下载完整日志（CSV）")).to_be_visible()
    grid = page.get_by_test_id("stDataFrame").last
    expect(grid.locator("td", has_text="登录失败").first).to_be_attached()  # the editor's wrong password
    settled(page)
    shot(page, shots, "32-zh-admin-audit")


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, Any]]:
    """A `modeldeck ui` whose `.streamlit/secrets.toml` points `st.login` at a test identity provider that signs
    everyone in as ana@example.com, who has a local editor account (the role comes from there)."""
    from tests import oidc_provider

    root = tmp_path_factory.mktemp("modeldeck-oidc")
    home, log = root / "home", root / "ui.log"
    home.mkdir()
    _add_user(home, "ana@example.com", "editor")
    ports = factories.free_ports(5)
    with oidc_provider.running(ports[4], email="ana@example.com") as provider:
        url = f"http://127.0.0.1:{ports[0]}"
        (root / ".streamlit").mkdir()
        (root / ".streamlit" / "secrets.toml").write_text(provider.secrets_toml(url))
        env = {"MODELDECK_SIGN_IN": "1"}
        with factories.running_ui(home, log=log, env=env, cwd=root, ports=ports[:4]) as (_, url, serving_url, _scoring):
            yield App(url=url, serving_url=serving_url, home=home, log=log), provider


def test_a_company_account_signs_in_through_the_identity_provider_and_keeps_its_local_role(
    oidc_app: tuple[App, Any], page: Page, shots: Path
) -> None:
    app, provider = oidc_app
    page.goto(f"{app.url}/?lang=en")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_role("button", name="Sign in with your company account").click()
    expect(page.get_by_text("Signed in as ana@example.com (editor)")).to_be_visible(timeout=60_000)
    assert provider.signed_in == ["ana@example.com"]
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link", name="Training", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    settled(page)
    shot(page, shots, "33-signed-in-oidc")
    page.reload()  # Streamlit keeps the provider's sign-in in a signed cookie: a reload does not ask again
    expect(page.get_by_text("Signed in as ana@example.com (editor)")).to_be_visible(timeout=60_000)
    audit = factories.cli_json(app.home, "audit")["entries"]
    assert [(e["actor"], e["action"]) for e in audit if e["action"] == "sign_in"][:1] == [
        ("ana@example.com", "sign_in")
    ]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible(timeout=60_000)
