"""A small REST client for the inference server: ours (`modeldeck serve`) or a real TensorFlow Serving.

It speaks plain HTTP through httpx and never imports TensorFlow: the dashboard uses it.
"""

from __future__ import annotations

import functools
import time
from typing import Any
from urllib.parse import quote

import httpx

from backend.config import serving_key, serving_url
from backend.errors import BadInput, NotFound, ServingUnavailable

PROBE_TIMEOUT_SECONDS = 2.0
STATUS_TIMEOUT_SECONDS = 10.0


def _base(base_url: str | None) -> str:
    return (base_url or serving_url()).rstrip("/")


def model_url(model: str, version: int | None = None, base_url: str | None = None, label: str | None = None) -> str:
    """Returns TensorFlow Serving's REST URL of a model, of one of its versions, or of a version label.

    Args:
        model: The model's name.
        version: A version number; `None` means the latest (or the label's).
        base_url: The server's base URL; defaults to `backend.config.serving_url()`.
        label: A version label (a registry stage, e.g. `production`), used when no version is given.
    """
    url = f"{_base(base_url)}/v1/models/{quote(model, safe='')}"
    if version is not None:
        return f"{url}/versions/{int(version)}"
    return url if label is None else f"{url}/labels/{quote(label, safe='')}"


def _server_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:300] or response.reason_phrase


def _headers() -> dict[str, str]:
    key = serving_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


@functools.cache
def _http() -> httpx.Client:
    """One client per process, its connections kept.

    A client per request built an SSL context each time, reading the system's certificates: about 10 ms of a
    dashboard page, under the lock all sessions share.
    """
    return httpx.Client()


def _send(method: str, url: str, base: str, *, timeout: float, body: Any = None) -> Any:
    try:
        response = _http().request(method, url, json=body, timeout=timeout, headers=_headers())
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise BadInput("error.serving.bad_url", base=base) from exc
    except httpx.TimeoutException as exc:
        raise ServingUnavailable("error.serving.timeout", base=base, timeout=timeout) from exc
    except httpx.TransportError as exc:
        raise ServingUnavailable("error.serving.unreachable", base=base) from exc
    if response.status_code in (401, 403):
        raise ServingUnavailable("error.serving.key_refused", base=base, message=_server_message(response))
    if response.status_code == 404:
        raise NotFound("error.serving.refused", message=_server_message(response))
    if response.status_code in (400, 408, 413):  # a bad request, or one over the server's size or time limits
        raise BadInput("error.serving.refused", message=_server_message(response))
    if response.is_error:
        raise ServingUnavailable(
            "error.serving.server_failed",
            base=base,
            status_code=response.status_code,
            server_message=_server_message(response),
        )
    try:
        return response.json()
    except ValueError as exc:
        raise ServingUnavailable("error.serving.not_json", base=base) from exc


def model_status(
    model: str, version: int | None = None, base_url: str | None = None, label: str | None = None
) -> dict[str, Any]:
    """Returns TensorFlow Serving's status of a model: `{"model_version_status": [...]}`.

    Raises:
        NotFound: The server has no such model or version.
        BadInput: No version holds the label.
        ServingUnavailable: The server is not answering.
    """
    url = model_url(model, version, base_url, label)
    return _send("GET", url, _base(base_url), timeout=STATUS_TIMEOUT_SECONDS)


def model_metadata(
    model: str, version: int | None = None, base_url: str | None = None, label: str | None = None
) -> dict[str, Any]:
    """Returns TensorFlow Serving's metadata of a model: its model_spec and signature_def.

    Raises:
        NotFound: The server has no such model or version.
        ServingUnavailable: The server is not answering.
    """
    url = model_url(model, version, base_url, label) + "/metadata"
    return _send("GET", url, _base(base_url), timeout=STATUS_TIMEOUT_SECONDS)


def _single_output_name(model: str, version: int | None, base_url: str | None, label: str | None) -> str:
    signatures = model_metadata(model, version, base_url, label)["metadata"]["signature_def"]["signature_def"]
    return next(iter(signatures["serving_default"]["outputs"]))


def predict(
    rows: list[dict[str, Any]],
    *,
    model: str,
    version: int | None = None,
    base_url: str | None = None,
    timeout: float = 30,
    signature: str | None = None,
    label: str | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Asks the server for predictions, one per row, in TensorFlow Serving's row format.

    A model with a single output gets bare values back from TensorFlow Serving; they are returned as
    `{output_name: value}` like the others (the name comes from the model's metadata).

    Args:
        rows: One dict of input name -> value per example.
        model: The model's name.
        version: A version number; `None` means the latest.
        base_url: The server's base URL; defaults to `backend.config.serving_url()`.
        timeout: Seconds to wait for the answer.
        signature: The signature to run; `None` means `serving_default`.
        label: A version label (e.g. `production`), used when no version is given.

    Returns:
        The predictions (output name -> value, per row) and the request's latency in milliseconds.

    Raises:
        BadInput: The server rejected the rows (its message says which input and why).
        NotFound: The server has no such model or version.
        ServingUnavailable: The server is not answering.
    """
    url = model_url(model, version, base_url, label) + ":predict"
    started = time.perf_counter()
    body: dict[str, Any] = {"instances": rows}
    if signature:
        body["signature_name"] = signature
    answer = _send("POST", url, _base(base_url), timeout=timeout, body=body)
    latency_ms = (time.perf_counter() - started) * 1000
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list):
        raise ServingUnavailable("error.serving.no_predictions", base=_base(base_url))
    if predictions and not isinstance(predictions[0], dict):
        output = _single_output_name(model, version, base_url, label)
        predictions = [{output: value} for value in predictions]
    return predictions, latency_ms


def is_up(base_url: str | None = None) -> bool:
    """Whether something answers HTTP at the server's URL (any answer counts, so real TF Serving does too)."""
    try:
        _http().get(f"{_base(base_url)}/v1/models", timeout=PROBE_TIMEOUT_SECONDS)
    except (httpx.HTTPError, httpx.InvalidURL):
        return False
    return True
