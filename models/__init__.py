"""Keras model builders, preprocessing inside the model, and training callbacks.

`models.spec` is light (no TensorFlow); the other modules import TensorFlow and are used only inside
a training job's child process, the inference server and the CLI.
"""
