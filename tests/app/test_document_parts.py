"""The document's Qt-free parts on their own: request tracking (stale stages, unsent edits), the versioned app record
of a project, the variation history and the per-stage layers with undo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.project_extra import APP_EXTRA_VERSION, AppExtra, AppExtraVersionError, SavedVariation
from app.request_tracking import UNSENT, RequestTracker, Wait
from app.stage_layers import StageLayers
from app.stage_status import StageStatus
from app.variations import VARIATION_LIMIT, Variation, Variations


def test_unsent_edits_keep_stages_stale_until_sent_and_answered():
    t = RequestTracker(3)
    t.layer_edited(0)
    assert t.mark_stale([1, 2], UNSENT) == [1, 2]
    assert t.waits_for_sending(2) and t.has_unsent()
    assert t.mark_stale([1, 2], Wait(5)) == []  # a request already queued does not settle unsent edits
    assert t.answered(5) == [] and t.is_stale(1)
    t.sent(7, [0], [], first_stage=0)
    assert not t.has_unsent() and not t.waits_for_sending(2)
    assert t.layer_newer_than(0, 6) and not t.layer_newer_than(0, 7)
    assert t.answered(6) == [] and sorted(t.answered(7)) == [1, 2] and t.settled()


def test_stale_stages_wait_for_the_latest_request():
    t = RequestTracker(3)
    t.mark_stale([1, 2], Wait(3))
    t.mark_stale([2], Wait(4))
    assert t.answered(3) == [1] and t.is_stale(2)
    assert t.answered(4) == [2]
    t.latent_edited(1)
    assert t.latent_newer_than(1, 10**9)  # an edit made here is newer than any answer
    t.latent_requested(1, 9)
    assert t.latent_newer_than(1, 8) and not t.latent_newer_than(1, 9)


def test_app_record_round_trip_and_versions():
    z = torch.linspace(-1, 1, 4)
    record = AppExtra((StageStatus.INFERRED, StageStatus.REFINED), (z,), ((SavedVariation(z, "Seed 3", 3),),),
                      "sun", "/models/x")
    extra = json.loads(json.dumps(record.to_extra()))  # what a project file holds
    assert extra["app"]["version"] == APP_EXTRA_VERSION
    back = AppExtra.from_extra(extra, num_stages=2, z_dim=4)
    assert back.version == APP_EXTRA_VERSION and back.origins == record.origins
    assert torch.equal(back.reset_latents[0], z) and back.variations[0][0].seed == 3
    assert back.artwork_name == "sun" and back.model_path == "/models/x"
    # Fields that do not fit the open model are left out; the rest is read.
    assert AppExtra.from_extra(extra, num_stages=3, z_dim=4).origins == ()
    assert AppExtra.from_extra(extra, num_stages=2, z_dim=8).reset_latents == ()
    assert AppExtra.from_extra(extra, num_stages=2, z_dim=8).artwork_name == "sun"
    # No record (a CLI project): None. A record of another version: refused as a whole, with the reason.
    assert AppExtra.from_extra({}, 2, 4) is None
    for version in (2, None, "1"):
        extra["app"]["version"] = version
        with pytest.raises(AppExtraVersionError, match=f"version {version!r}"):
            AppExtra.from_extra(extra, 2, 4)


def test_variation_history():
    v = Variations(1)
    z = torch.zeros(4)
    assert v.add(0, Variation(z, "Start", picture=Wait(1)))
    assert not v.add(0, Variation(z.clone(), "Edited"))  # the same code twice is one entry
    v.add(0, Variation(None, "Seed 5", seed=5, picture=Wait(2)))
    v.add(0, Variation(torch.ones(4), "Edited", picture=UNSENT))
    v.sampled(0, 2, torch.full((4,), 2.0))
    assert torch.equal(v[0][1].z, torch.full((4,), 2.0))
    v.sent(3)
    assert v[0][2].picture == Wait(3)
    picture = np.zeros((2, 2, 3), np.uint8)
    assert v.fill_thumbs(2, lambda: picture) == [0]
    assert [x.thumb is not None for x in v[0]] == [True, True, False]  # request 3 is not answered yet
    for k in range(VARIATION_LIMIT + 5):
        v.add(0, Variation(torch.full((4,), float(k + 10)), "Edited"))
    assert len(v[0]) == VARIATION_LIMIT


def test_layers_undo_per_stage():
    layers = StageLayers(2)
    paint = np.zeros((4, 4, 4), np.uint8)
    assert not layers.commit(0, paint, "Nothing")  # an empty layer over no layer records nothing
    paint[1, 1] = (255, 0, 0, 255)
    assert layers.commit(0, paint, "Paint")
    assert layers[0] is not None and layers[1] is None and layers.undo_label(0) == "Paint"
    layers.undo(0)
    assert layers[0] is None and layers.can_redo(0) and not layers.can_undo(1)
    layers.redo(0)
    assert np.array_equal(layers[0], paint) and layers.undo_depth(0) == 1
    layers.restart_history([False, True])
    assert not layers.can_undo(0) and layers[0] is not None
