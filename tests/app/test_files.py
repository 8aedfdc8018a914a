"""Files: projects (save / open round trip, autosave and recovery, another model's project), exports, model
bundles (open another, broken, missing default), and bad files that must give a message, not a crash."""

from __future__ import annotations

import shutil
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import torch
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from app import autosave
from tests.app.conftest import drag, open_window, wait_idle


def paint_something(qtbot, window) -> None:
    doc = window.doc
    window.tools.set_size(4)
    drag(window.canvas, [(4, 4), (20, 12), (28, 28)])
    doc.set_current_stage(1)
    drag(window.canvas, [(10, 20), (20, 22)])
    doc.set_current_stage(0)
    window.latent_panel.spins[0].setValue(1.25)
    wait_idle(qtbot, window)


def test_project_round_trip(qtbot, window, tmp_path, artwork_png):
    doc = window.doc
    doc.settings.refine_after_open = True
    with qtbot.waitSignal(doc.refineFinished, timeout=30000):
        window.open_image(str(artwork_png))
    wait_idle(qtbot, window)
    paint_something(qtbot, window)
    saved = {"bases": [b.clone() for b in doc.bases], "layers": [None if ly is None else ly.copy()
                                                                  for ly in doc.layers],
             "latents": [z.clone() for z in doc.latents], "deltas": [d.clone() for d in doc.deltas],
             "targets": [t.clone() for t in doc.targets], "origin": list(doc.origin)}
    path = tmp_path / "work.artflow"
    with qtbot.waitSignal(doc.projectSaved, timeout=10000):
        window.save_project(str(path))
    assert path.is_file() and not doc.dirty
    assert doc.project_path == path and "work.artflow" in window.windowTitle()
    # Something else in between, then open the project again.
    with qtbot.waitSignal(doc.stageChanged, timeout=10000):
        window.new_artwork()
    wait_idle(qtbot, window)
    assert doc.layers[0] is None and doc.targets is None
    window.open_project(str(path))
    qtbot.waitUntil(lambda: doc.project_path == path, timeout=10000)
    wait_idle(qtbot, window)
    for a, b in zip(saved["bases"], doc.bases):
        assert torch.equal(a, b)
    for a, b in zip(saved["layers"], doc.layers):
        assert (a is None and b is None) or np.array_equal(a, b)
    for key in ("latents", "deltas", "targets"):
        for a, b in zip(saved[key], getattr(doc, key)):
            assert torch.equal(a, b)
    assert doc.origin == saved["origin"]
    assert abs(window.latent_panel.spins[0].value() - 1.25) < 1e-6
    assert not doc.dirty
    assert len(doc.variations[0]) >= 1


def test_exports_open_in_pillow(qtbot, window, tmp_path):
    paint_something(qtbot, window)
    out = window.export("png", str(tmp_path / "final.png"))
    assert Image.open(out).size == (32, 32)
    out = window.export("png", str(tmp_path / "final4.png"), scale=4)
    assert Image.open(out).size == (128, 128)
    files = window.export("stages", str(tmp_path / "stages"))
    assert [p.name for p in files] == ["00-lineart.png", "01-flat.png", "02-detail.png"]
    for p in files:
        Image.open(p).load()
    strip = window.export("strip", str(tmp_path / "strip.png"))
    assert Image.open(strip).width > 3 * 32
    ora = window.export("ora", str(tmp_path / "art.ora"))
    with zipfile.ZipFile(ora) as zf:
        assert zf.read("mimetype") == b"image/openraster"
        layers = ET.fromstring(zf.read("stack.xml")).findall(".//layer")
        assert len(layers) == 3
        for layer in layers:
            Image.open(zf.open(layer.get("src"))).load()
    gif = window.export("gif", str(tmp_path / "flow.gif"))
    assert Image.open(gif).n_frames == 3
    # The final PNG is the final stage as shown.
    got = np.asarray(Image.open(tmp_path / "final.png").convert("RGB"))
    assert np.abs(got.astype(int) - window.doc.stage_rgb(2).astype(int)).max() <= 1


def test_export_to_a_bad_place_gives_a_message(window, tmp_path, dialogs):
    # A missing folder is created (as the CLI's -o does): the export is written, no message.
    missing = tmp_path / "no" / "such" / "folder" / "x.png"
    assert window.export("png", str(missing)) == missing and Image.open(missing).size == (32, 32)
    assert dialogs.calls == []
    # A place that cannot be a folder: a message, nothing written, no traceback.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert window.export("stages", str(blocker)) is None
    assert dialogs.kinds() == ["critical"] and "not a folder" in dialogs.calls[-1][2]
    assert window.export("png", str(blocker / "x.png")) is None
    assert dialogs.kinds() == ["critical", "critical"] and blocker.read_text() == "x"


def test_bad_project_files_give_a_message(qtbot, window, tmp_path, dialogs):
    doc = window.doc
    paint_something(qtbot, window)
    layer = doc.layers[0].copy()
    for name, data in (("random.artflow", b"not a zip at all"),
                       ("empty-zip.artflow", None)):
        p = tmp_path / name
        if data is None:
            with zipfile.ZipFile(p, "w") as zf:
                zf.writestr("hello.txt", "hi")
        else:
            p.write_bytes(data)
        n = len(dialogs.calls)
        window.open_project(str(p))
        qtbot.waitUntil(lambda n=n: len([c for c in dialogs.calls[n:] if c[0] == "critical"]) == 1, timeout=10000)
        assert name in dialogs.calls[-1][2]
    wait_idle(qtbot, window)
    assert np.array_equal(doc.layers[0], layer)
    assert doc.has_model


def test_project_of_another_model_opens_as_a_new_artwork_if_asked(qtbot, window, tmp_path, four_stage_bundle,
                                                                  dialogs):
    from core.editing.session import Session
    from core.files import bundle
    from core.files.project import project_from_session, save_project

    other = Session(bundle.load(four_stage_bundle))
    other.start_from(torch.zeros(1, 32, 32))
    path = save_project(project_from_session(other), tmp_path / "other.artflow")
    dialogs.answers["question"] = QMessageBox.StandardButton.Yes
    window.doc.settings.refine_after_open = False
    with qtbot.waitSignal(window.doc.artworkOpened, timeout=10000):
        window.open_project(str(path))
    assert any("another model" in c[1] for c in dialogs.calls)
    wait_idle(qtbot, window)
    assert window.doc.targets is not None
    assert window.doc.num_stages == 3


def test_project_of_another_model_opens_at_its_own_size(qtbot, window, tmp_path, dialogs):
    """Its final image becomes the new artwork at the artwork's full size (not the model's 32 px), and the
    question names the model shortened and escaped (a forged million-character name costs the dialog nothing)."""
    from tests import forgery
    from tests.app.conftest import other_model_project

    path = other_model_project(tmp_path / "theirs.artflow", size=(90, 60))
    path.write_bytes(forgery.rename_model(path.read_bytes(), "evil\x1b[2J" + "A" * 1_000_000))
    dialogs.answers["question"] = QMessageBox.StandardButton.Yes
    window.doc.settings.refine_after_open = False
    with qtbot.waitSignal(window.doc.artworkOpened, timeout=10000):
        window.open_project(str(path))
    wait_idle(qtbot, window)
    (text,) = [c[2] for c in dialogs.calls if c[0] == "question"]
    assert len(text) < 1000 and "theirs.artflow was made with the model 'evil\\x1b[2JAAA" in text
    assert "\x1b" not in text
    assert window.doc.artwork_size == (90, 60)
    final = window.doc.stage_u8(window.doc.num_stages - 1)
    assert final.shape[:2] == (60, 90) and final[30, 30].max() < 100 and final[5, 5].min() > 200


def test_open_another_model_rebuilds_tabs_and_sliders(qtbot, window, four_stage_bundle):
    doc = window.doc
    with qtbot.waitSignal(doc.modelChanged, timeout=20000):
        window.open_model(str(four_stage_bundle))
    wait_idle(qtbot, window)
    assert window.tabs.count() == 4
    assert [window.tabs.tabText(k) for k in range(4)] == ["Sketch", "Flat colours", "Shading", "Final"]
    assert len(window.strip.cards) == 4
    assert window.latent_panel.combo.count() == 3
    assert "four" in window.model_label.text()
    doc.set_current_stage(3)
    assert window.latent_panel.transition == 2
    drag(window.canvas, [(3, 3), (9, 9)])
    wait_idle(qtbot, window)
    assert doc.status(3) == "edited"


def test_bundled_models_menu_checks_the_loaded_one_and_switches_models(qtbot, monkeypatch, tmp_path, tiny_bundle,
                                                                       four_stage_bundle):
    from core.files import bundle

    shipped = tmp_path / "models"
    shutil.copytree(tiny_bundle, shipped / "tiny")
    shutil.copytree(four_stage_bundle, shipped / "four")
    monkeypatch.setattr(bundle, "BUNDLED_DIR", shipped)
    monkeypatch.setattr(bundle, "DEFAULT_BUNDLE", "tiny")
    win = open_window(qtbot, shipped / "tiny")
    try:
        controls = win.controls
        assert [a.text() for a in controls.bundled_menu.actions()] == ["tiny", "four"]  # the default first
        tiny, four = controls.bundled_menu.actions()
        assert tiny.isChecked() and not four.isChecked()
        with qtbot.waitSignal(win.doc.modelChanged, timeout=20000):
            four.trigger()
        wait_idle(qtbot, win)
        assert win.tabs.count() == 4 and "four" in win.model_label.text()
        assert four.isChecked() and not tiny.isChecked()
        # The open model again: nothing is reloaded.
        loads = []
        win.doc.modelLoading.connect(loads.append)
        four.trigger()
        qtbot.wait(50)
        assert loads == [] and four.isChecked()
        # A model from elsewhere: no bundled entry stays checked.
        with qtbot.waitSignal(win.doc.modelChanged, timeout=20000):
            win.open_model(str(tiny_bundle))
        wait_idle(qtbot, win)
        assert not tiny.isChecked() and not four.isChecked()
    finally:
        win.shutdown()


def test_a_broken_model_folder_gives_a_message_and_keeps_the_current_model(qtbot, window, tmp_path,
                                                                           tiny_bundle, dialogs):
    doc = window.doc
    paint_something(qtbot, window)
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    window.open_model(str(broken))
    qtbot.waitUntil(lambda: "critical" in dialogs.kinds(), timeout=10000)
    assert "model.safetensors" in dialogs.texts()
    assert doc.has_model and doc.layers[0] is not None
    notafolder = tmp_path / "weights.pth"
    notafolder.write_bytes(b"pickle")
    n = len(dialogs.calls)
    window.open_model(str(notafolder))
    qtbot.waitUntil(lambda: len(dialogs.calls) > n, timeout=10000)
    assert dialogs.calls[-1][0] == "critical" and "pickle" in dialogs.calls[-1][2]  # refused before any question
    assert doc.has_model


def test_missing_default_model_says_so(qtbot, monkeypatch, tmp_path, dialogs):
    from core.files import bundle

    monkeypatch.setattr(bundle, "default_bundle_path", lambda: tmp_path / "nowhere")
    win = open_window(qtbot, None)
    qtbot.waitUntil(lambda: "warning" in dialogs.kinds(), timeout=5000)
    assert "No model" in dialogs.calls[-1][1]
    assert "Open model" in win.statusBar().currentMessage()
    assert win.device_label.text() == "No model loaded"
    assert win.tabs.count() == 0 and not win.controls.act_save.isEnabled()
    win.canvas.repaint()
    # Opening an image without a model: a message, no crash.
    win.doc.open_image(str(tmp_path / "x.png"))
    assert dialogs.kinds()[-1] == "critical"
    win.shutdown()


def test_autosave_and_recovery_after_a_crash(qtbot, window, tiny_bundle, dialogs):
    doc = window.doc
    paint_something(qtbot, window)
    with qtbot.waitSignal(doc.projectSaved, timeout=10000) as saved:
        assert doc.autosave()
    assert saved.args[1] is True
    path = autosave.autosave_path()
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert not doc.autosave()  # nothing changed since
    assert window.autosave_timer.interval() == 60000
    layer = doc.layers[0].copy()
    latents = doc.latents[0].clone()
    # "Crash": the autosave is left behind by a process that no longer exists.
    dead = autosave.autosave_path(pid=999999)
    shutil.copy(path, dead)
    shutil.copy(path.with_suffix(".json"), dead.with_suffix(".json"))
    assert [r.path for r in autosave.find_recoverable()] == [dead]
    dialogs.answers["question"] = QMessageBox.StandardButton.Yes
    win2 = open_window(qtbot, tiny_bundle)
    qtbot.waitUntil(lambda: any("Recover" in c[1] for c in dialogs.calls), timeout=5000)
    qtbot.waitUntil(lambda: win2.doc.layers[0] is not None, timeout=10000)
    wait_idle(qtbot, win2)
    assert np.array_equal(win2.doc.layers[0], layer)
    assert torch.equal(win2.doc.latents[0], latents)
    assert win2.doc.dirty  # recovered work is not saved anywhere yet
    dialogs.answers["question"] = QMessageBox.StandardButton.Discard
    win2.close()
    # A clean exit leaves no autosave of its own behind.
    assert not autosave.autosave_path().exists()


def test_a_broken_model_at_startup_offers_to_open_another(qtbot, tmp_path, tiny_bundle, dialogs):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "config.json").write_text("{ not json")
    from app.application import create_window

    win = create_window(str(broken), device="cpu")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: "warning" in dialogs.kinds(), timeout=10000)
    title, text = dialogs.calls[-1][1:]
    assert title == "No model loaded" and "config.json" in text and "Open one now?" in text
    assert "Open model" in win.statusBar().currentMessage()
    win.shutdown()


def test_save_changes_on_close_waits_for_the_engine_and_a_failed_save_keeps_the_window(qtbot, tiny_bundle,
                                                                                       tmp_path, dialogs):
    from app.layers import layer_to_tensors
    from core.files.project import load_project

    win = open_window(qtbot, tiny_bundle)
    folder = tmp_path / "projects"
    path = folder / "work.artflow"
    with qtbot.waitSignal(win.doc.projectSaved, timeout=10000):
        win.save_project(str(path))
    paint_something(qtbot, win)
    dialogs.answers["question"] = QMessageBox.StandardButton.Save
    # The save cannot be written (its folder became a file): the message is shown and the window stays.
    shutil.rmtree(folder)
    folder.write_text("x")
    assert not win.close()  # the close waits for the engine's answer; the event loop keeps running meanwhile
    qtbot.waitUntil(lambda: "critical" in dialogs.kinds(), timeout=10000)
    assert "Cannot save" in dialogs.calls[-1][1]
    qtbot.wait(50)
    assert win.isVisible() and win.doc.dirty and not win.engine.isFinished()
    # Once it can be written, Save on close saves first, then closes.
    folder.unlink()
    layer = win.doc.layers[0].copy()
    assert not win.close()
    qtbot.waitUntil(win.engine.isFinished, timeout=10000)
    assert not win.isVisible()
    colour, alpha = load_project(path).state.layers[0]
    expected = layer_to_tensors(layer, 1)
    assert torch.equal(colour, expected[0]) and torch.equal(alpha, expected[1])


def _painted_and_saved(qtbot, window, tmp_path):
    """Paint on the first stage, save as tmp_path/mine.artflow and read that project back (core's reader)."""
    from core.files.project import load_project

    paint_something(qtbot, window)
    path = tmp_path / "mine.artflow"
    with qtbot.waitSignal(window.doc.projectSaved, timeout=10000):
        window.save_project(str(path))
    return load_project(path)


def _open_after_a_new_artwork(qtbot, window, path):
    """Start a new artwork, then open the project `path`; returns the layers the window had before."""
    doc = window.doc
    layers = [None if ly is None else ly.copy() for ly in doc.layers]
    with qtbot.waitSignal(doc.stageChanged, timeout=10000):
        window.new_artwork()
    wait_idle(qtbot, window)
    window.open_project(str(path))
    qtbot.waitUntil(lambda: doc.project_path == path, timeout=10000)
    wait_idle(qtbot, window)
    return layers


def test_a_project_with_newer_app_data_opens_with_a_note(qtbot, window, tmp_path):
    from core.files.project import save_project

    doc = window.doc
    project = _painted_and_saved(qtbot, window, tmp_path)
    project.extra["app"]["version"] = 2  # written by a newer Artflow
    newer = save_project(project, tmp_path / "newer.artflow")
    messages = []
    doc.message.connect(messages.append)
    layers = _open_after_a_new_artwork(qtbot, window, newer)
    assert any("version 2" in m and "left out" in m for m in messages)
    for a, b in zip(layers, doc.layers):  # core's part of the project is read all the same
        assert (a is None and b is None) or np.array_equal(a, b)
    assert [doc.status(k) for k in range(3)] == ["edited", "edited", "generated"]


def test_a_project_with_a_forged_app_record_opens_without_it(qtbot, window, tmp_path, dialogs):
    """Values of the wrong kind in the app's record (a list among the stage origins, codes of 1e300 or of
    a 400-digit integer) are skipped with a log line; core's part of the project opens, no traceback."""
    from core.files.project import save_project

    doc = window.doc
    project = _painted_and_saved(qtbot, window, tmp_path)
    record = project.extra["app"]
    record["origins"] = [["edited"], {"a": 1}, "generated"]
    record["reset_latents"] = [[1e300] * len(z) for z in record["reset_latents"]]
    record["variations"] = [[{"z": [10**400] * doc.z_dim, "label": "x", "seed": 10**30}] for _ in record["variations"]]
    forged = save_project(project, tmp_path / "forged.artflow")
    layers = _open_after_a_new_artwork(qtbot, window, forged)
    assert dialogs.calls == []
    for a, b in zip(layers, doc.layers):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert all(bool(torch.isfinite(z).all()) for z in doc.reset_latents)


def test_the_next_start_opens_the_model_loaded_last(qtbot, monkeypatch, tmp_path, tiny_bundle, four_stage_bundle):
    """Without --model the app opens the model the artist used last; one that has gone since falls back to the
    default bundle."""
    from core.files import bundle

    monkeypatch.setattr(bundle, "default_bundle_path", lambda: tiny_bundle)
    moved = tmp_path / "four"
    shutil.copytree(four_stage_bundle, moved)
    win = open_window(qtbot, moved)
    win.shutdown()  # saves the settings

    def next_start_opens(name: str, stages: int) -> None:
        again = open_window(qtbot, None)
        try:
            qtbot.waitUntil(lambda: again.doc.has_model, timeout=20000)
            assert name in again.model_label.text() and again.tabs.count() == stages
        finally:
            again.shutdown()

    next_start_opens("four", 4)
    shutil.rmtree(moved)
    next_start_opens("tiny", 3)
