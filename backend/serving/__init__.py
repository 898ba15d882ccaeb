"""The serving wing: TensorFlow Serving's REST and gRPC APIs over the exported models, and ways to call them.

- `client.py`: the inference server's REST client (no TensorFlow: the dashboard uses it).
- `predictor.py`: run an exported SavedModel in this process with plain TensorFlow (the CLI's predict, eval).
- `registry.py`: the model registry: versions, stages (staging, production) with their history, rollback.
- `requestlog.py`: the server's log of every request (sampled, bounded, written in batches) to the run history.
- `monitoring.py`: figures over that log: traffic, latency, predictions, input drift (PSI) against the training data.
- `repository.py`, `rest.py`, `grpc_service.py`, `server.py`: the inference server behind `modeldeck serve`.

Importing this door loads no TensorFlow: the predictor loads it when it is built, the server when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.serving.client import is_up, model_metadata, model_status, model_url, predict
from backend.serving.keys import create as create_key
from backend.serving.keys import listing as api_keys
from backend.serving.keys import loopback
from backend.serving.keys import revoke as revoke_key
from backend.serving.monitoring import (
    DRIFT_ALERT,
    MIN_DRIFT_ROWS,
    Bin,
    Bucket,
    FeatureDrift,
    Monitoring,
    Predictions,
    categorical_psi,
    monitor,
    numeric_psi,
)
from backend.serving.predictor import Predictor
from backend.serving.registry import (
    PRODUCTION,
    STAGES,
    Model,
    ModelDetail,
    change_dict,
    promote,
    rollback,
    stage_version,
)
from backend.serving.registry import models as registry_models
from backend.serving.registry import show as registry_model


def serve(*, home: Path, rest_port: int, grpc_port: int, host: str, **limits: Any) -> None:
    """Serve every exported model under `home` over REST and gRPC until Ctrl-C (see `server.serve`).

    `limits` are `server.serve`'s max_body_bytes, max_rows, request_timeout and require_keys.
    """
    from backend.serving.server import serve as serve_models  # imports TensorFlow

    serve_models(home=home, rest_port=rest_port, grpc_port=grpc_port, host=host, **limits)


__all__ = [
    "DRIFT_ALERT",
    "MIN_DRIFT_ROWS",
    "PRODUCTION",
    "STAGES",
    "Bin",
    "Bucket",
    "FeatureDrift",
    "Model",
    "ModelDetail",
    "Monitoring",
    "Predictions",
    "Predictor",
    "api_keys",
    "categorical_psi",
    "create_key",
    "loopback",
    "revoke_key",
    "change_dict",
    "is_up",
    "model_metadata",
    "model_status",
    "model_url",
    "monitor",
    "numeric_psi",
    "predict",
    "promote",
    "registry_model",
    "registry_models",
    "rollback",
    "serve",
    "stage_version",
]
