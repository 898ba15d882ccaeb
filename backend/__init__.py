"""ModelDeck's backend: five wings, each a folder whose `__init__.py` is its door, and three faces.

Wings: `data` (uploads to versions), `quality` (the gate and its fixes), `jobs` (runs, the worker, training,
search), `serving` (the TensorFlow Serving compatible server and its client), `i18n` (every word the user
reads). Faces: `cli` (`modeldeck`), `playground` (what the dashboard's pages need), `ui` (`modeldeck ui`).
Layers, top down: faces > jobs | serving > quality > data > i18n | config | errors (import-linter checks them).

Nothing imported at a door pulls in TensorFlow: the dashboard imports them, and TensorFlow is loaded only
where a model is built, trained or served.
"""
