"""The models the inference server serves, and how a request's inputs meet a signature.

Exports live at `<home>/runs/<run-id>/export/<model>/<version>/saved_model.pb` (TensorFlow Serving's
layout). The folder is rescanned at most once a second, and at once when a request names a model or
version it has not seen, so a new export is served without a restart. A SavedModel is loaded on first use
and kept until its `saved_model.pb` is replaced (a chosen threshold rewrites the version's export). Every
version found is servable; "latest" is the highest version number, once it has loaded: while a new version
loads, requests for the latest are answered by the version before it (TensorFlow Serving's availability-preserving
policy), so none waits for the load.

A version label (`production`, `staging`) names the version that holds that stage in the model registry
(`registry.py`), read through `StageLabels` at request time, so a promotion or a rollback reaches a running
server within a second. A loaded version that is not its model's latest, that no stage holds and that no request
used for `unload_after` seconds is unloaded (`unload_idle`, which the server calls periodically); the next request
for it loads it again. The latest stays, as in TensorFlow Serving: unloaded, the version before it would answer
for the latest while it loaded again.
"""

from __future__ import annotations

import base64
import gc
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from backend.config import Paths
from backend.errors import BadInput, ModelDeckError, NotFound
from backend.serving.registry import StageLabels
from backend.serving.requestlog import RequestLog

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
RESCAN_SECONDS = 1.0
GRPC_STOP_GRACE_SECONDS = 5.0
UNLOAD_AFTER_SECONDS = 600.0  # a version neither latest nor staged is unloaded after this long without a request
_EXPORT_GLOB = "*/export/*/*/saved_model.pb"
_VERSION = re.compile(r"[0-9]+")
_INTERNAL_ERROR = "Internal error while serving the request; the server's log has the details."


# -- the model repository ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Servable:
    """One version of one model, and the folder its SavedModel is in."""

    name: str
    version: int
    path: Path


def _unknown_label(label: str) -> BadInput:
    return BadInput("error.serving.unknown_label", label=label)  # TensorFlow Serving's INVALID_ARGUMENT


def _not_found(name: str, version: int | None) -> NotFound:
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return NotFound("error.serving.servable_not_found", request=request)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which file `saved_model.pb` is now (inode, modification time): it changes when a threshold is chosen."""
    try:
        info = (path / "saved_model.pb").stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def scan_exports(runs: Path) -> dict[str, dict[int, Path]]:
    """Finds every exported SavedModel under the runs folder.

    Args:
        runs: The `<home>/runs` folder.

    Returns:
        Model name -> version -> the version's folder.
    """
    index: dict[str, dict[int, Path]] = {}
    for saved_model in sorted(runs.glob(_EXPORT_GLOB)):
        folder = saved_model.parent
        if not _VERSION.fullmatch(folder.name) or int(folder.name) < 1:
            continue
        versions = index.setdefault(folder.parent.name, {})
        version = int(folder.name)
        if version in versions:
            log.warning("Ignoring %s: %s already holds that model version", folder, versions[version])
            continue
        versions[version] = folder
    return index


MAX_BATCH_ROWS = 10_000  # examples per request: more would hold the server (and its memory) for one client


def _cannot_load(servable: Servable, why: str) -> NotFound:
    """A version whose files do not load: not found, as TensorFlow Serving says of a version that failed to load."""
    return NotFound(
        "error.serving.cannot_load", servable_name=servable.name, version=servable.version, path=servable.path, why=why
    )


class ModelRepository:
    """The exported models under a ModelDeck home, loaded lazily and cached. Safe to share across threads."""

    def __init__(
        self,
        home: Path,
        rescan_seconds: float = RESCAN_SECONDS,
        *,
        labels: StageLabels | None = None,
        requests: RequestLog | None = None,
        unload_after: float = UNLOAD_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_rows: int = MAX_BATCH_ROWS,
    ) -> None:
        """Creates a repository over `<home>/runs`; nothing is scanned or loaded yet.

        Args:
            home: The ModelDeck home folder.
            rescan_seconds: How old the last scan may be before a request triggers a new one.
            labels: The model registry's stages, which version labels name; without it no label resolves.
            requests: Where the predict requests are logged (`requestlog.py`); without it none is.
            unload_after: Seconds without a request after which a version no stage holds is unloaded.
            clock: Seconds, for the last use of each version (tests pass their own).
            max_rows: The most examples one predict request may carry.
        """
        self.max_rows = max_rows
        self.runs = Paths(Path(home)).runs
        self.labels = labels
        self.requests = requests or RequestLog(None)
        self._unload_after = unload_after
        self._clock = clock
        self._used: dict[Path, float] = {}
        self._rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._index: dict[str, dict[int, Path]] = {}
        self._scanned_at = float("-inf")
        self._loaded: dict[Path, Any] = {}
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        self._load_locks: dict[Path, threading.Lock] = {}
        self._in_background: set[Path] = set()  # a thread of `_load_soon` is on it
        self._found: set[Path] = set()  # every version `warm_up` has seen, so it warms each model's latest once
        self._broken: dict[Path, tuple[tuple[int, int] | None, str]] = {}  # failed to load: its stamp then, why

    def _refresh(self, *, force: bool = False) -> dict[str, dict[int, Path]]:
        with self._lock:
            if force or time.monotonic() - self._scanned_at >= self._rescan_seconds:
                self._index = scan_exports(self.runs)
                self._scanned_at = time.monotonic()
                present = {path for versions in self._index.values() for path in versions.values()}
                stamps = {path: _stamp(path) for path in present}  # a version rewritten in place is loaded again
                self._loaded = {
                    p: m for p, m in self._loaded.items() if p in present and self._stamps.get(p) == stamps[p]
                }
                self._stamps = stamps
            return self._index

    def models(self) -> dict[str, list[int]]:
        """Returns model name -> its versions, highest first."""
        return {name: sorted(versions, reverse=True) for name, versions in sorted(self._refresh().items())}

    def versions(self, name: str) -> list[int]:
        """Returns a model's versions, highest first.

        Raises:
            NotFound: No export of that model exists.
        """
        versions = self._refresh().get(name) or self._refresh(force=True).get(name)
        if not versions:
            raise _not_found(name, None)
        return sorted(versions, reverse=True)

    def broken(self) -> dict[str, dict[int, str]]:
        """Model name -> version -> why it cannot be loaded, for the versions whose files have not changed since."""
        with self._lock:
            where = {path: (name, v) for name, versions in self._index.items() for v, path in versions.items()}
            found: dict[str, dict[int, str]] = {}
            for path, (stamp, why) in self._broken.items():
                if path in where and _stamp(path) == stamp:
                    found.setdefault(where[path][0], {})[where[path][1]] = why
        return found

    def _is_broken(self, path: Path) -> bool:
        failed = self._broken.get(path)
        return failed is not None and failed[0] == _stamp(path)

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """Finds a model version: by number, by label (the registry's stage), or the latest when neither is given.

        The latest is the highest version that loads: one whose files are broken (a truncated copy, say) is passed
        over, as TensorFlow Serving does, and asked for by number it is refused with why.

        Raises:
            BadInput: No version of the model holds that label, in TensorFlow Serving's words.
            NotFound: No such model or version, in TensorFlow Serving's words.
        """
        if label is not None:
            version = self.labels.version(name, label) if self.labels is not None else None
            if version is None:
                raise _unknown_label(label)
        for force in (False, True):
            versions = self._refresh(force=force).get(name, {})
            if version is None:
                chosen = self._latest_ready(name, versions)
            else:
                chosen = version
            if chosen in versions:
                return Servable(name, chosen, versions[chosen])
        raise _not_found(name, version)

    def _latest_ready(self, name: str, versions: dict[int, Path]) -> int | None:
        """The version that answers for the latest: the newest whose files load, once it is in memory.

        While it is not and an older one is, the newest of those answers, and the newer is loaded in the background
        meanwhile (`_load_soon`). A first request, with nothing in memory yet, loads the newest itself. When every
        version is broken, the newest, for the request to say why.
        """
        newest, ready = self._newest_and_ready(versions)
        if newest is None:
            return max(versions, default=None)
        if ready is not None and ready != newest:
            self._load_soon(Servable(name, newest, versions[newest]))
            return ready
        return newest

    def _newest_and_ready(self, versions: dict[int, Path]) -> tuple[int | None, int | None]:
        """A model's newest version whose files load, and the newest of those in memory now (None: none is)."""
        healthy = sorted((v for v, path in versions.items() if not self._is_broken(path)), reverse=True)
        ready = next((v for v in healthy if self._in_memory(versions[v])), None)
        return (healthy[0] if healthy else None), ready

    def _in_memory(self, path: Path) -> bool:
        with self._lock:
            loaded, stamp = path in self._loaded, self._stamps.get(path)
        return loaded and stamp == _stamp(path)

    def _load_soon(self, servable: Servable) -> None:
        """Loads a version in a thread of its own (one per version at a time); a failure is logged by `_load`."""
        with self._lock:
            if servable.path in self._in_background:
                return
            self._in_background.add(servable.path)

        def load() -> None:
            try:
                self._load(servable)
                gc.freeze()  # as the server's housekeeping does after its loads (`server._housekeeping`)
            except ModelDeckError:
                pass
            finally:
                with self._lock:
                    self._in_background.discard(servable.path)

        threading.Thread(target=load, name=f"load {servable.name} {servable.version}", daemon=True).start()

    def loading(self, name: str) -> list[int]:
        """A model's version LOADING, in TensorFlow Serving's words (none, or one).

        That is the newest, while it is not in memory and an older version answers for the latest meanwhile
        (`_latest_ready`). A version read from disk for a request that names it, or for the first request of all,
        is AVAILABLE: the request waits for it.
        """
        with self._lock:
            versions = dict(self._index.get(name, {}))
        newest, ready = self._newest_and_ready(versions)
        return [newest] if newest is not None and ready is not None and ready != newest else []

    def _load(self, servable: Servable) -> Any:
        """The version in memory, loaded (and warmed, `_warm`) on first use or when its files were rewritten.

        A rewrite (a threshold chosen while the server runs) is seen on the very next request: each one compares
        `saved_model.pb`'s stamp, one stat, rather than wait for the next scan.
        """
        stamp = _stamp(servable.path)
        with self._lock:
            self._used[servable.path] = self._clock()
            loaded = self._loaded.get(servable.path)
            if loaded is not None and self._stamps.get(servable.path) == stamp:
                return loaded
            lock = self._load_locks.setdefault(servable.path, threading.Lock())
        with lock:
            with self._lock:
                loaded = self._loaded.get(servable.path)
                if loaded is not None and self._stamps.get(servable.path) == stamp:
                    return loaded
            failed = self._broken.get(servable.path)
            if failed is not None and failed[0] == stamp:  # tried already, and the files have not changed since
                raise _cannot_load(servable, failed[1])
            started = time.monotonic()
            loaded = self._read(servable, stamp)
            _warm(servable, loaded)
            with self._lock:
                self._loaded[servable.path] = loaded
                self._stamps[servable.path] = stamp
            log.info(
                "model=%s version=%d loaded in %.1f s from %s",
                servable.name,
                servable.version,
                time.monotonic() - started,
                servable.path,
            )
            return loaded

    def _read(self, servable: Servable, stamp: tuple[int, int] | None) -> Any:
        """The SavedModel from disk; one that fails to load is remembered as broken (until its files change)."""
        try:
            return tf.saved_model.load(str(servable.path))
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]
            with self._lock:
                self._broken[servable.path] = (stamp, f"{type(exc).__name__}: {reason}"[:300])
            log.error(
                "model=%s version=%d failed to load from %s: %s: %s",
                servable.name,
                servable.version,
                servable.path,
                type(exc).__name__,
                reason,
            )
            log.debug("the load's traceback", exc_info=exc)
            raise _cannot_load(servable, f"{type(exc).__name__}: {reason}"[:300]) from exc

    def warm_up(self) -> list[tuple[str, int]]:
        """Loads (and so warms) what requests will want, so that the first answer comes as fast as the rest.

        That is each model's latest version when it first appears, and every version a stage holds. A version
        that fails to load is logged and left to the request that wants it, which says why.

        Returns:
            The (model, version) pairs loaded by this call.
        """
        index = self._refresh()
        wanted = set(self.labels.pinned()) if self.labels is not None else set()
        with self._lock:
            for name, versions in index.items():
                latest = max(versions)
                if versions[latest] not in self._found:
                    wanted.add((name, latest))
            self._found.update(path for versions in index.values() for path in versions.values())
            loaded = set(self._loaded)
        warmed = []
        for name, version in sorted(wanted):
            path = index.get(name, {}).get(version)
            if path is None or path in loaded:
                continue
            try:
                self._load(Servable(name, version, path))
            except ModelDeckError:  # logged by `_load`; the request that wants this version will say why
                continue
            warmed.append((name, version))
        return warmed

    def signature(self, servable: Servable, signature_name: str = DEFAULT_SIGNATURE) -> Any:
        """Loads the model if needed and returns one of its signatures (a concrete function).

        Raises:
            BadInput: The model has no signature of that name.
        """
        signatures = self._load(servable).signatures
        name = signature_name or DEFAULT_SIGNATURE
        if name not in signatures:
            raise BadInput("error.serving.no_signature", name=name, signatures=", ".join(sorted(signatures)))
        return signatures[name]

    def loaded(self) -> dict[str, list[int]]:
        """Model name -> its versions in memory now, highest first."""
        with self._lock:
            where = {path: (name, v) for name, versions in self._index.items() for v, path in versions.items()}
            found: dict[str, list[int]] = {}
            for path in self._loaded:
                if path in where:
                    found.setdefault(where[path][0], []).append(where[path][1])
        return {name: sorted(versions, reverse=True) for name, versions in sorted(found.items())}

    def unload_idle(self) -> list[tuple[str, int]]:
        """Unloads the versions idle for `unload_after` seconds that are neither their model's latest nor staged.

        Returns:
            The (model, version) pairs unloaded.
        """
        index = self._refresh()
        pinned = self.labels.pinned() if self.labels is not None else set()
        latest = {(name, self._newest_and_ready(versions)[0]) for name, versions in index.items()}
        where = {path: (name, v) for name, versions in index.items() for v, path in versions.items()}
        now = self._clock()
        dropped = []
        with self._lock:
            for path in list(self._loaded):
                servable = where.get(path)
                idle = now - self._used.get(path, now) >= self._unload_after
                if servable is not None and servable not in pinned | latest and idle:
                    del self._loaded[path]
                    dropped.append(servable)
        for name, version in dropped:
            log.info(
                "model=%s version=%d unloaded: not the latest, no stage holds it, no request used it lately",
                name,
                version,
            )
        return sorted(dropped)

    def signature_defs(self, servable: Servable) -> dict[str, meta_graph_pb2.SignatureDef]:
        """Reads the SignatureDefs from `saved_model.pb`, as TensorFlow Serving reports them."""
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((servable.path / "saved_model.pb").read_bytes())
        return dict(saved_model.meta_graphs[0].signature_def)


# -- inputs: JSON or TensorProtos -> arrays that fit the signature -------------------------------------------
def input_specs(signature: Any) -> dict[str, tf.TensorSpec]:
    """Returns a signature's keyword inputs: name -> TensorSpec."""
    return dict(signature.structured_input_signature[1])


def _warm(servable: Servable, loaded: Any) -> None:
    """Calls each signature once on one made-up row, so that no request waits for the first call.

    A loaded SavedModel's first call builds and optimises its graph (1.5 s for a table model, against 0.1 s for a
    later call). A signature that refuses the row is left as it is: the request will say what it wants.
    """
    for name, signature in loaded.signatures.items():
        try:
            signature(**{n: tf.constant(_made_up(spec), spec.dtype) for n, spec in input_specs(signature).items()})
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]
            log.debug("model=%s version=%d signature %s not warmed: %s", servable.name, servable.version, name, reason)


def _made_up(spec: tf.TensorSpec) -> np.ndarray:
    """One row of an input that no model can refuse for its values: zeros, or empty (missing) texts."""
    shape = [1] if spec.shape.rank is None else [1 if size is None else size for size in spec.shape.as_list()]
    if spec.dtype == tf.string:
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, dtype=spec.dtype.as_numpy_dtype)


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "any shape"
    return "[" + ", ".join("-1" if size is None else str(size) for size in shape.as_list()) + "]"


def check_names(given: Any, expected: list[str], where: str) -> None:
    missing = [name for name in expected if name not in given]
    if missing:
        raise BadInput("error.serving.missing_input", where=where, missing=missing[0], expected=", ".join(expected))
    unknown = sorted(set(given) - set(expected))
    if unknown:
        raise BadInput("error.serving.unknown_input", where=where, unknown=unknown[0], expected=", ".join(expected))


def _to_bytes(name: str, value: Any) -> Any:
    if isinstance(value, list):
        if set(map(type, value)) == {str}:  # a column of texts: no call per value
            return [item.encode() for item in value]
        return [_to_bytes(name, item) for item in value]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as exc:
            raise BadInput("error.serving.bad_b64", name=name, reason=exc) from exc
    raise BadInput("error.serving.not_a_string", name=name, value=value)


def _to_array(name: str, value: Any, spec: tf.TensorSpec) -> np.ndarray:
    if spec.dtype == tf.string:
        items = _to_bytes(name, value.tolist() if isinstance(value, np.ndarray) else value)
        array = np.array(items, dtype=object)
        if not set(map(type, array.flat)) <= {bytes}:  # a list among the strings: ragged
            raise BadInput("error.serving.ragged", name=name)
        return array
    try:
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadInput("error.serving.bad_dtype", name=name, dtype=spec.dtype.name, reason=exc) from exc


def _fit_shape(name: str, array: np.ndarray, spec: tf.TensorSpec) -> np.ndarray:
    shape = spec.shape
    if shape.rank is not None and array.ndim == shape.rank - 1 and shape[-1] == 1:
        array = array.reshape(array.shape + (1,))
    if not shape.is_compatible_with(array.shape):
        raise BadInput("error.serving.bad_shape", name=name, got=list(array.shape), shape=_shape_text(shape))
    return array


def _check_batch_sizes(arrays: dict[str, np.ndarray], specs: dict[str, tf.TensorSpec], max_rows: int) -> None:
    sizes = {name: len(array) for name, array in arrays.items() if specs[name].shape[:1].as_list() == [None]}
    if len(set(sizes.values())) > 1:
        counts = ", ".join(f"{name}: {size}" for name, size in sorted(sizes.items()))
        raise BadInput("error.serving.uneven_inputs", counts=counts)
    rows = max(sizes.values(), default=0)
    if rows > max_rows:
        raise BadInput("error.serving.too_many_rows", rows=rows, limit=max_rows)


def _tf_message(exc: tf.errors.OpError) -> str:
    noise = ("Graph execution error", "Detected at node", "<stack traces")
    lines = [line for line in exc.message.splitlines() if line.strip() and not line[0].isspace()]
    useful = [line for line in lines if not line.startswith(noise)] or lines or ["unknown error"]
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", useful[0]).strip()


def run_signature(signature: Any, inputs: dict[str, Any], *, max_rows: int = MAX_BATCH_ROWS) -> dict[str, np.ndarray]:
    """Checks and converts named inputs, runs the signature and returns its named outputs.

    Args:
        signature: A loaded SavedModel signature (keyword inputs, dict of outputs).
        inputs: Input name -> a value per example (JSON lists, or arrays from TensorProtos).
        max_rows: More examples than this in one request are refused (400): a request is answered in one go.

    Returns:
        Output name -> NumPy array.

    Raises:
        BadInput: An input is missing, unknown, of the wrong type or shape, or the model rejects it.
    """
    specs = input_specs(signature)
    check_names(inputs, sorted(specs), "The request")
    arrays = {name: _fit_shape(name, _to_array(name, inputs[name], spec), spec) for name, spec in specs.items()}
    _check_batch_sizes(arrays, specs, max_rows)
    tensors = {name: tf.constant(array, dtype=specs[name].dtype) for name, array in arrays.items()}
    try:
        outputs = signature(**tensors)
    except tf.errors.InvalidArgumentError as exc:
        raise BadInput("error.serving.rejected", tf_message=_tf_message(exc)) from exc
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def error_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the one-line message for an error while serving (gRPC maps the same errors)."""
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, BadInput):
        return 400, str(exc)
    if isinstance(exc, ModelDeckError):
        return 500, str(exc)
    log.error("Unexpected error while serving", exc_info=exc)
    return 500, _INTERNAL_ERROR
