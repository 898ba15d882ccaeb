"""ModelDeck's backend: services over the store, the worker, the inference server and the CLI.

Nothing imported at this package's top level pulls in TensorFlow: the dashboard imports these services,
and TensorFlow is loaded only where a model is built, trained or served.
"""
