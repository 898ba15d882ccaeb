"""The average of several exports of one table task, served as one plain TensorFlow SavedModel.

`architecture=auto` trains the candidate families on one split; when the average of the two best scores better
on the validation rows than either alone, the run keeps the average. The members are loaded SavedModels with
the same raw-column `serving_default` (every table family's export has it), so the ensemble takes the same
inputs and returns the same named outputs: the mean of their probabilities (the label is the most probable
class), or the mean of their values. The saved ensemble holds the members' variables and tables itself and
loads with plain TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf


class Ensemble(tf.Module):
    """Members' `serving_default` outputs averaged, behind a signature equal to theirs."""

    def __init__(self, folders: Sequence[Path]) -> None:
        super().__init__(name="ensemble")
        self.members = [tf.saved_model.load(str(folder)) for folder in folders]
        functions = [member.signatures["serving_default"] for member in self.members]
        _, signature = functions[0].structured_input_signature

        @tf.function(input_signature=[signature], autograph=False)
        def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            outputs = [f(**inputs) for f in functions]
            if "value" in outputs[0]:
                return {"value": tf.add_n([o["value"] for o in outputs]) / len(outputs)}
            probabilities = tf.add_n([o["probabilities"] for o in outputs]) / len(outputs)
            classes = outputs[0]["classes"]
            return {
                "probabilities": probabilities,
                "label": tf.gather(classes, tf.argmax(probabilities, axis=1), batch_dims=1),
                "classes": classes,
            }

        self.serving_default = serve


def export(folders: Sequence[Path], path: Path) -> None:
    """Write the average of the exports in `folders` (all of one task and plan) as a SavedModel at `path`."""
    module = Ensemble(folders)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serving_default})
