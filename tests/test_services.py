"""Dashboard-facing services that need no trained model."""

from __future__ import annotations

import pandas as pd

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
