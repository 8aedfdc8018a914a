"""tools/contact_sheet.py: the model card's sheet of drawn-style line art with random colourings."""

from __future__ import annotations

import numpy as np

from core.files import bundle
from tests.core.engine_util import RES, tiny_model
from tests.synthetic import make_stage_dataset
from tools.contact_sheet import contact_sheet


def test_sheet_has_a_row_per_drawing_and_different_colourings(tmp_path):
    model_dir = tmp_path / "model"
    bundle.save(tiny_model(seed=1), model_dir)
    data = make_stage_dataset(tmp_path / "test", n=3, size=RES)
    sheet = contact_sheet(str(data), str(model_dir), rows=3, colourings=2, seed=0)
    assert sheet.size == (5 * RES, 3 * RES)
    a = np.asarray(sheet).astype(int)
    line = a[:RES, :RES]
    assert (line == line[..., :1]).all()  # the line art column is grey
    first, second = a[:RES, RES:2 * RES], a[:RES, 3 * RES:4 * RES]  # flats of two random codes
    assert np.abs(first - second).mean() > 0.5
    # Repeatable: the same seed gives the same sheet.
    again = contact_sheet(str(data), str(model_dir), rows=3, colourings=2, seed=0)
    assert np.array_equal(np.asarray(again), np.asarray(sheet))
