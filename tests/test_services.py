"""Dashboard-facing services that need no trained model."""

from __future__ import annotations

import pandas as pd

from backend import jobs
from backend import playground as services
from tests import factories


def test_playground_fields_show_the_uploaded_column_names(store) -> None:
    frame = pd.DataFrame({"城市": ["北京", "上海"] * 20, "面积": range(40), "price": range(40)})
    _, version = factories.add_frame(store, frame, name="homes", target="price")
    names = [c["name"] for c in version.columns]
    run = store.create_run(version_id=version.id, task="regression", target="price", spec={})
    run = store.update_run(run.id, evaluation={"features": {"numeric": [names[1]], "categorical": [names[0]]}})
    fields = services.playground_fields(store, run)
    assert [(f["name"], f["label"], f["kind"]) for f in fields] == [
        (names[0], "城市", "categorical"),
        (names[1], "面积", "numeric"),
    ]
    assert fields[0]["options"] == ["北京", "上海"]


def test_a_real_example_carries_what_really_happened_and_which_inputs_it_leaves_empty(store) -> None:
    frame = pd.DataFrame({"tenure": [3.0, None, 40.0], "plan": ["basic", "plus", None], "churn": ["yes", "no", None]})
    _, version = factories.add_frame(store, frame, name="churn", target="churn")
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={})
    first, second, third, again = (services.example_row(store, run, i) for i in (0, 1, 2, 3))
    assert (first.values, first.actual, first.empty) == ({"tenure": 3.0, "plan": "basic"}, "yes", [])
    assert (second.actual, second.empty) == ("no", ["tenure"])
    assert (third.actual, third.empty) == (None, ["plan"]), "a row without a target has no actual outcome"
    assert again == first, "the button wraps round the rows"


def test_line_breaks_written_as_html_read_as_line_breaks() -> None:
    from dashboard.common import readable

    assert readable("Great taste.<br /><br />Would buy again<BR>twice") == "Great taste.\n\nWould buy again\ntwice"


def test_a_finished_run_is_summed_up_in_a_sentence_a_manager_can_repeat(store) -> None:
    from backend.jobs import in_plain_words

    frame = pd.DataFrame({"tenure": range(40), "churn": ["yes", "no"] * 20})
    _, version = factories.add_frame(store, frame, name="churn", target="churn")
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={})
    matrix = [[500, 40], [133, 146]]  # rows: actual no, yes; columns: predicted no, yes
    run = store.update_run(run.id, evaluation={"classes": ["no", "yes"], "confusion_matrix": matrix})
    assert in_plain_words(run).text("en") == (
        "Of the 279 test cases where churn is yes, it finds 146; of the cases it flags, 78% really are."
    )
    assert "找出了 146 个" in in_plain_words(run).text("zh")
    three = store.update_run(
        run.id,
        evaluation={
            "classes": ["a", "b", "c"],
            "confusion_matrix": [[8, 1, 1], [0, 9, 1], [2, 2, 6]],
            "baseline": {"accuracy": 0.34},
        },
    )
    assert in_plain_words(three).text("en") == (
        "It names the right churn for 77% of the test cases, against 34% by always guessing the most common one."
    )


def test_fields_read_as_words_and_a_0_1_number_is_a_switch(store) -> None:
    frame = pd.DataFrame(
        {"monthly_spend": [float(i) for i in range(40)], "SeniorCitizen": [0, 1] * 20, "price": range(40)}
    )
    _, version = factories.add_frame(store, frame, name="spend", target="price")
    names = [c["name"] for c in version.columns]
    run = store.create_run(version_id=version.id, task="regression", target="price", spec={})
    run = store.update_run(run.id, evaluation={"features": {"numeric": names[:2]}})
    fields = services.playground_fields(store, run)
    assert [(f["label"], f["kind"]) for f in fields] == [("Monthly spend", "numeric"), ("Senior citizen", "flag")]
    assert [jobs.humanise(n) for n in ("customerID", "x1", "HTTPCode", "城市")] == [
        "Customer ID",
        "X1",
        "HTTP code",
        "城市",
    ]


def test_a_run_shows_its_classes_and_columns_by_the_names_given_and_keeps_them_when_run_again(store) -> None:
    from backend.errors import BadInput

    frame = pd.DataFrame({"monthly_spend": [float(i) for i in range(40)], "churn": ["yes", "no"] * 20})
    _, version = factories.add_frame(store, frame, name="churn", target="churn")
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={})
    matrix = [[500, 40], [133, 146]]
    evaluation = {"classes": ["no", "yes"], "confusion_matrix": matrix, "features": {"numeric": ["monthly_spend"]}}
    run = store.update_run(run.id, evaluation=evaluation)

    run = jobs.rename_run(
        store, run.id, classes={"yes": "  will   leave ", "no": ""}, columns={"monthly_spend": "Spend (€/month)"}
    )
    assert run.names == {"classes": {"yes": "will leave"}, "columns": {"monthly_spend": "Spend (€/month)"}}
    assert [jobs.class_name(run, c) for c in ("no", "yes")] == ["no", "will leave"]
    assert [f["label"] for f in services.playground_fields(store, run)] == ["Spend (€/month)"]
    assert jobs.in_plain_words(run).text("en").startswith("Of the 279 test cases where churn is will leave, it finds")
    run = jobs.rename_run(store, run.id, columns={"churn": "the customer"})
    assert "where the customer is will leave" in jobs.in_plain_words(run).text("en")

    before = store.get_run(run.id).names
    for given, key in (
        ({"classes": {"maybe": "Perhaps"}}, "error.names.unknown_class"),
        ({"columns": {"tenure": "Tenure"}}, "error.names.unknown_column"),
        ({"classes": {"no": "will leave"}}, "error.names.same_name"),
        ({"classes": {"no": "x" * 81}}, "error.names.too_long"),
    ):
        try:
            jobs.rename_run(store, run.id, **given)
        except BadInput as exc:
            assert exc.key == key
        else:
            raise AssertionError(f"{given} was accepted")
    assert store.get_run(run.id).names == before, "a refused rename changes nothing"

    again = jobs.run_again(store, run_id=run.id)
    assert again.names == before
    cleared = jobs.rename_run(store, run.id, classes={"yes": "yes"}, columns={"monthly_spend": " ", "churn": ""})
    assert cleared.names == {"classes": {}, "columns": {}}
    assert [f["label"] for f in services.playground_fields(store, cleared)] == ["Monthly spend"]
