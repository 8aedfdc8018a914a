"""Artflow desktop app (PySide6). Widgets bind to `app.document.Document`; all model work runs on the single
engine thread in `app.engine_worker`. No model math lives here: only calls into `core`."""
