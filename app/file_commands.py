"""The window's file commands: new, open (image, project, model), save, export, and recovery of autosaved work.

Saving goes through the document like any other engine work: `Document.save_project` queues a request and
returns its id; the engine's answer comes back as `Document.saveFinished(id, saved)`. A command that must wait
for a save (closing the window, opening another artwork after "Save changes?") is a continuation run on that
message, so the GUI never spins a nested event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox, QStatusBar

from app import autosave
from core.errors import ArtflowError
from core.files import export as core_export
from core.files.export import ExportFormat

if TYPE_CHECKING:
    from app.document import Document
    from app.settings import Settings


class FileHost(Protocol):
    """What the file commands need of their window (the main window, a QWidget: their dialogs' parent): its
    document and settings, its status bar, its error box, and whether it runs for a screenshot. A protocol, so
    that this module does not import the window that owns it."""

    doc: Document
    settings: Settings
    screenshot_mode: bool

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt's name)

    def show_error(self, title: str, text: str) -> None: ...

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
PROJECT_FILTER = "Artflow projects (*.artflow);;All files (*)"
PNG_FILTER = "PNG image (*.png)"

# The save dialog of each export: title, file name after the artwork's name, filter (STAGES asks for a folder).
EXPORT_DIALOGS = {
    ExportFormat.PNG: ("Export the final image", "{stem}.png", PNG_FILTER),
    ExportFormat.STRIP: ("Export the workflow strip", "{stem}-workflow.png", PNG_FILTER),
    ExportFormat.ORA: ("Export a layered OpenRaster file", "{stem}.ora", "OpenRaster (*.ora)"),
    ExportFormat.GIF: ("Export an animated GIF", "{stem}.gif", "GIF (*.gif)"),
}
ENLARGED_DIALOG = ("Export the final image, enlarged", "{stem}-x{scale}.png", PNG_FILTER)


class FileCommands:
    """File commands of `window` (the main window): dialogs are its children, messages go to its status bar."""

    def __init__(self, window: FileHost) -> None:
        self.window = window
        self.doc = window.doc
        self.settings = window.settings
        self._after_save: dict[int, Callable[[], None]] = {}  # save request id -> what runs once it is saved
        self._recovering: autosave.Recoverable | None = None
        self.doc.saveFinished.connect(self._on_save_finished)

    # ----- unsaved changes -----
    def use_line_art_as_it_was(self) -> None:
        """Edit > Use the line art as it was: the line art opened last, opened again without the scan clean-up. It
        replaces the artwork, so work done since it opened is offered for saving first."""
        doc = self.doc
        if doc.line_art_opened is None:
            return
        if doc.serial == doc.line_art_opened[2]:
            doc.undo_line_art_cleanup()
        else:
            self.then_after_saving(doc.undo_line_art_cleanup)

    def then_after_saving(self, then: Callable[[], None]) -> None:
        """Before the artwork is replaced or the app closes: offer to save unsaved changes. `then` runs at once
        (nothing to save, or Discard), once the engine has saved (Save), or never (Cancel, or the save failed:
        its error is shown and nothing is lost)."""
        doc = self.doc
        if self.window.screenshot_mode or not doc.has_model or not doc.dirty:
            then()
            return
        answer = QMessageBox.question(
            self.window, "Save changes?", f"Save the changes to {doc.title()} before going on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            self.save_project(then=then)
        elif answer != QMessageBox.StandardButton.Cancel:
            then()

    def _on_save_finished(self, rid: int, saved: bool) -> None:
        then = self._after_save.pop(rid, None)
        if saved and then is not None:
            then()

    # ----- opening -----
    def new_artwork(self, width: int | None = None, height: int | None = None, model: str | None = None) -> None:
        """A new blank sheet of width x height (None: the model's own size), drawn with `model` (a bundle folder;
        None: the model open now), after "Save changes?"."""
        def go() -> None:
            info = self.doc.model_info if self.doc.has_model else None
            if model and (info is None or Path(info.path).resolve() != Path(model).resolve()):
                self.doc.load_model(model)  # the engine answers in order: the sheet is made with the new model
            self.doc.new_artwork(width, height)

        self.then_after_saving(go)

    def ask_new_artwork(self) -> QDialog | None:
        """File > New drawing: the size and model dialog (app/widgets/new_drawing_dialog.py), then new_artwork.
        Returns the dialog (open, window-modal) for tests to drive."""
        from app.widgets.new_drawing_dialog import NewDrawingDialog

        if not self.doc.has_model:
            return None
        info = self.doc.model_info
        dialog = NewDrawingDialog(self.window, self.settings, self.doc.config.resolution,
                                  info.path if info is not None else None)

        def accepted() -> None:
            dialog.remember()
            self.new_artwork(*dialog.choice())

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def open_image(self, path: str | None = None) -> None:
        self._open(path, "Open an artwork", IMAGE_FILTER, self.doc.open_image)

    def open_line_art(self, path: str | None = None) -> None:
        """File > Open line art…: an image (a drawing's line layer, a scan) as the first stage at its own size."""
        self._open(path, "Open line art", IMAGE_FILTER, self.doc.open_line_art)

    def open_project(self, path: str | None = None) -> None:
        self._open(path, "Open a project", PROJECT_FILTER, self.doc.open_project)

    def _open(self, path: str | None, title: str, filt: str, opener: Callable[[str], object]) -> None:
        """After "Save changes?": open `path`, or the file the artist chooses."""
        def go() -> None:
            chosen = path or self._ask_open(title, filt)
            if chosen:
                opener(chosen)

        self.then_after_saving(go)

    def open_model(self, path: str | None = None) -> None:
        from core.files import bundle

        if path is None:
            path = QFileDialog.getExistingDirectory(self.window, "Open a model bundle (a folder with config.json "
                                                    "and model.safetensors)", self.settings.last_folder)
        if not path:
            return
        try:
            bundle.load_config(path)  # a quick check (no weights read) before the artist is asked to save
        except ArtflowError as exc:
            self.window.show_error("Cannot open the model", str(exc))
            return
        self.then_after_saving(lambda: self.doc.load_model(path))

    # ----- saving -----
    def save_project(self, path: str | None = None, then: Callable[[], None] | None = None) -> bool:
        """Save to `path`, or where the project was saved, or (asked) somewhere new. Returns whether a save was
        queued; `then` runs once it is saved."""
        if not self.doc.has_model:
            return False
        if path is None and self.doc.project_path:
            path = str(self.doc.project_path)
        if path is None:
            return self.save_project_as(then=then)
        return self._save(path, then)

    def save_project_as(self, path: str | None = None, then: Callable[[], None] | None = None) -> bool:
        if not self.doc.has_model:
            return False
        path = path or self._ask_save("Save project", f"{self.doc.title().rsplit('.', 1)[0]}.artflow",
                                      PROJECT_FILTER)
        return bool(path) and self._save(path, then)

    def _save(self, path: str, then: Callable[[], None] | None) -> bool:
        if not path.endswith(".artflow"):
            path += ".artflow"
        rid = self.doc.save_project(path)
        if rid and then is not None:
            self._after_save[rid] = then
        return bool(rid)

    # ----- exporting -----
    def export(self, fmt: ExportFormat | str, path: str | None = None,
               scale: int = 1) -> Path | list[Path] | None:
        """Write an export with core/files/export.py; returns what was written: the file, or the files of STAGES (None
        if cancelled or failed: the failure is shown)."""
        fmt = ExportFormat(fmt)
        doc = self.doc
        if not doc.has_model:
            return None
        doc.flush_now()
        if path is None:
            path = self._ask_export_path(fmt, scale)
            if not path:
                return None
        if any(doc.is_stale(k) for k in range(doc.num_stages)):
            self.window.statusBar().showMessage("Note: some stages are still being regenerated; exported as shown",
                                                6000)
        try:
            out = core_export.export(doc.stage_images(), list(doc.config.stage_names), fmt, path, scale=int(scale),
                                     line_over=doc.lines_over)
        except ArtflowError as exc:
            self.window.show_error("Export failed", str(exc))
            return None
        except OSError as exc:
            self.window.show_error("Export failed", f"{path}: {exc.strerror or exc}")
            return None
        self.window.statusBar().showMessage(f"Exported {path}", 6000)
        return out if fmt.writes_folder else out[0]

    def export_enlarged(self, path: str | None = None) -> Path | None:
        """The final image enlarged: the factor is asked."""
        if not self.doc.has_model:
            return None
        scale, ok = QInputDialog.getInt(self.window, "Enlarge the final image", "Enlarge by (times):", 4, 2,
                                        core_export.MAX_SCALE)
        return self.export(ExportFormat.PNG, path, scale) if ok else None

    def _ask_export_path(self, fmt: ExportFormat, scale: int) -> str:
        if fmt.writes_folder:
            return QFileDialog.getExistingDirectory(self.window, "Export every stage into a folder",
                                                    self.settings.last_folder)
        stem = self.doc.title().rsplit(".", 1)[0] or "artwork"
        title, name, filt = ENLARGED_DIALOG if fmt is ExportFormat.PNG and scale > 1 else EXPORT_DIALOGS[fmt]
        return self._ask_save(title, name.format(stem=stem, scale=scale), filt)

    # ----- dialogs -----
    def _ask_open(self, title: str, filt: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self.window, title, self.settings.last_folder, filt)
        if path:
            self.settings.last_folder = str(Path(path).parent)
        return path

    def _ask_save(self, title: str, suggested: str, filt: str) -> str:
        start = str(Path(self.settings.last_folder or Path.home()) / suggested)
        path, _ = QFileDialog.getSaveFileName(self.window, title, start, filt)
        if path:
            self.settings.last_folder = str(Path(path).parent)
        return path

    # ----- recovery -----
    def offer_recovery(self) -> None:
        """Autosaves left by a session that crashed: offer to recover the newest, discard or keep them."""
        if self.window.screenshot_mode:
            return
        found = autosave.find_recoverable()
        if not found:
            return
        rec = found[0]
        more = f"\n({len(found) - 1} older autosave(s) are kept for later.)" if len(found) > 1 else ""
        what = f" of {Path(rec.project).name}" if rec.project else ""
        answer = QMessageBox.question(
            self.window, "Recover unsaved work?",
            f"Artflow did not close properly last time. Recover the work{what} autosaved at {rec.when}?{more}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self._recovering = rec
            self.doc.open_project(str(rec.path), recovered=True)
            self.doc.projectSaved.connect(self._drop_recovered)  # once our own autosave exists, drop the old one
        elif answer == QMessageBox.StandardButton.Discard:
            autosave.remove(rec.path)

    def _drop_recovered(self, path: str, auto: bool) -> None:
        if self._recovering is not None:
            autosave.remove(self._recovering.path)
            self._recovering = None
            self.doc.projectSaved.disconnect(self._drop_recovered)

