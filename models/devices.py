"""Pick the device set-up when a job starts: GPUs with mixed precision, or the CPU in float32.

`MODELDECK_FORCE_DEVICE=gpu` forces the GPU branch's settings (precision and strategy) on a machine
without one, so that branch is exercised by tests on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf


@dataclass(frozen=True)
class DeviceSetup:
    device: str  # what the run page shows, e.g. "CPU" or "2× GPU (NVIDIA H100)"
    precision: str  # "float32" | "mixed_float16" | "mixed_bfloat16"
    strategy: str  # "default" | "mirrored"
    replicas: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _precision_for(gpus: list[Any]) -> str:
    """bfloat16 on cards that have it (compute capability 8.0 and newer), float16 before that."""
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        if details.get("compute_capability", (0, 0)) < (8, 0):
            return "mixed_float16"
    return "mixed_bfloat16"


def _forced() -> str:
    return os.environ.get("MODELDECK_FORCE_DEVICE", "").lower()


def has_gpu() -> bool:
    """Whether runs here take the GPU branch: a GPU is present, or forced with MODELDECK_FORCE_DEVICE=gpu, and the
    CPU is not forced. Unlike `detect`, it touches no device settings, so a job may ask it at any time."""
    forced = _forced()
    return forced == "gpu" or (forced != "cpu" and bool(tf.config.list_physical_devices("GPU")))


def detect() -> DeviceSetup:
    forced = _forced()
    gpus = tf.config.list_physical_devices("GPU")
    if forced == "cpu" or (not gpus and forced != "gpu"):
        return DeviceSetup("CPU", "float32", "default", 1)
    if not gpus:  # forced: the GPU settings, exercised on the CPU
        return DeviceSetup("CPU (GPU settings forced)", "mixed_float16", "mirrored", 1)
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    label = f"{len(gpus)}× GPU ({name})" if len(gpus) > 1 else f"GPU ({name})"
    return DeviceSetup(label, _precision_for(gpus), "mirrored", len(gpus))


def apply(setup: DeviceSetup) -> tf.distribute.Strategy:
    """Set the global precision policy and return the strategy to build and train the model under."""
    keras.mixed_precision.set_global_policy(setup.precision)
    if setup.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
