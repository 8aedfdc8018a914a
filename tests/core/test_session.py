"""The editing session (core.editing.session): the generator chain, propagation, latents, refinement, cancel,
snapshots."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.editing.session import Z_RANGE, Session, compose, run_to_end
from core.errors import ArtflowError
from core.model import WorkflowModel
from core.session_state import SessionState
from tests.core.engine_util import (  # noqa: F401
    FOUR_STAGES,
    RES,
    StopAfter,
    changed,
    drive,
    image,
    single_thread,
    stages_of,
    states_equal,
    tiny_model,
)


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


@pytest.fixture
def session(model):
    s = Session(model, "cpu")
    s.load_artwork(image(3, seed=1))
    return s


# ----- loading an artwork -----

def test_load_artwork(session, model):
    art = image(3, seed=1)
    assert [tuple(s.shape) for s in session.stages] == [(1, RES, RES), (3, RES, RES), (3, RES, RES)]
    assert all(s.dtype == torch.float32 and s.device.type == "cpu" for s in session.stages)
    assert all(s.min() >= -1 and s.max() <= 1 for s in session.stages)
    assert session.targets is not None and torch.equal(session.targets[-1], art)
    # Stage 0 is the inferred first stage; stages 1.. are generated from it (the encoder-only reconstruction).
    assert torch.equal(session.stages[0], session.targets[0])
    assert not torch.equal(session.stages[-1], art)
    with torch.no_grad():
        mu, _ = model.encoders[1](art[None])
    torch.testing.assert_close(session.latents[1], mu[0])
    assert all(torch.count_nonzero(d) == 0 for d in session.deltas)


def test_infer_stages_matches_the_inference_chain(session, model):
    art = image(3, seed=2)
    inferred = session.infer_stages(art)
    with torch.no_grad():
        flat = model.inference[1](art[None])
        line = model.inference[0](flat)
    torch.testing.assert_close(inferred[1], flat[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(inferred[0], line[0], rtol=0, atol=1e-5)
    assert torch.equal(inferred[2], art)


# ----- propagation -----

@pytest.mark.parametrize("k", [0, 1])
def test_propagate_leaves_earlier_stages_bit_identical(session, k):
    c = session.config.stages[k].channels
    session.set_stage(k, image(c, seed=50 + k), propagate=False)
    before, before_stages = session.snapshot(), stages_of(session)
    regenerated = session.propagate(k)
    after, after_stages = session.snapshot(), stages_of(session)
    assert regenerated == list(range(k + 1, session.num_stages))
    for j in range(k + 1):
        assert torch.equal(before_stages[j], after_stages[j])
    assert changed(before_stages, after_stages) == regenerated
    assert states_equal(dataclasses.replace(before, bases=after.bases), after)  # nothing else moved


def test_propagate_last_stage_is_a_no_op(session):
    before = session.snapshot()
    assert session.propagate(session.num_stages - 1) == []
    assert states_equal(before, session.snapshot())


def test_propagate_until_a_stage_leaves_the_later_ones(session):
    session.set_stage(0, image(1, seed=7), propagate=False)
    before = session.snapshot()
    assert session.propagate(0, until=1) == [1]
    assert not torch.equal(session.bases[1], before.bases[1])
    assert torch.equal(session.bases[2], before.bases[2])  # not regenerated
    assert session.propagate(1) == [2]
    with pytest.raises(ArtflowError, match="not a later stage"):
        session.propagate(1, until=1)
    with pytest.raises(ArtflowError, match="not a later stage"):
        session.propagate(0, until=session.num_stages)


def test_propagate_is_deterministic(session):
    session.set_stage(0, image(1, seed=7))
    first = session.snapshot()
    session.propagate(0)
    assert states_equal(first, session.snapshot())


def test_propagate_uses_latent_and_delta(session):
    session.propagate(0)
    expected = session.generate(0)
    assert torch.equal(session.stages[1], expected) and torch.equal(session.bases[1], expected)
    session.deltas[0] = torch.full_like(session.deltas[0], 0.3)
    session.propagate(0)
    assert not torch.equal(session.stages[1], expected)
    assert torch.equal(session.stages[1], session.generate(0))
    with torch.no_grad():
        base = session.model.generators[0].adain_params(session.latents[0][None])[0]
    torch.testing.assert_close(session.adain_params(0), base + 0.3)


def test_keep_mask(session):
    session.set_stage(0, image(1, seed=8), propagate=False)
    before = session.snapshot()
    session.propagate(0, keep_mask=torch.zeros(RES, RES))
    assert states_equal(before, session.snapshot())  # mask 0 everywhere: later stages keep their pixels
    mask = torch.zeros(RES, RES)
    mask[:, : RES // 2] = 1
    session.propagate(0, keep_mask=mask)
    for k in (1, 2):
        assert torch.equal(session.stages[k][:, :, RES // 2:], before.bases[k][:, :, RES // 2:])
        assert not torch.equal(session.stages[k][:, :, : RES // 2], before.bases[k][:, :, : RES // 2])
    session.restore(before)
    session.propagate(0, keep_mask=torch.ones(RES, RES))
    with_ones = session.snapshot()
    session.restore(before)
    session.propagate(0)
    assert states_equal(with_ones, session.snapshot())


@pytest.mark.parametrize("i", [0, 1])
def test_set_latent_changes_only_later_stages(session, i):
    before, before_stages = session.snapshot(), stages_of(session)
    z = torch.linspace(-2, 2, session.config.generator.z_dim)
    regenerated = session.set_latent(i, z)
    after = session.snapshot()
    assert regenerated == list(range(i + 1, session.num_stages))
    assert changed(before_stages, stages_of(session)) == regenerated
    assert torch.equal(session.latents[i], z)
    for j, (a, b) in enumerate(zip(before.latents, after.latents, strict=True)):
        assert torch.equal(a, b) == (j != i)
    assert not session.set_latent(i, z * 0.5, propagate=False)
    assert states_equal(dataclasses.replace(after, latents=tuple(session.latents)), session.snapshot())


def test_sample_latent_is_repeatable_and_clipped(session):
    a = session.sample_latent(0, seed=123)
    stage = session.stages[1].clone()
    b = session.sample_latent(0, seed=123)
    assert torch.equal(a, b) and torch.equal(stage, session.stages[1])
    assert a.abs().max() <= Z_RANGE
    c = session.sample_latent(0, seed=124)
    assert not torch.equal(a, c)


def test_start_from_a_first_stage(session):
    sketch = image(1, seed=30)
    session.deltas[1] += 1.0
    session.start_from(sketch)
    assert session.targets is None
    assert torch.equal(session.stages[0], sketch)
    assert all(torch.count_nonzero(z) == 0 for z in session.latents)
    assert all(torch.count_nonzero(d) == 0 for d in session.deltas)
    assert torch.equal(session.stages[1], session.generate(0))


# ----- refinement -----

@pytest.mark.parametrize("regularizer", ["learned", "none"])
def test_refine_lowers_the_loss_of_every_transition(session, regularizer):
    before, before_stages = session.snapshot(), stages_of(session)
    steps, report = drive(session.refine(steps=25, regularizer=regularizer, preview_every=5))
    assert report.completed and report.regularizer == regularizer
    assert report.perceptual == "discriminator" and report.regularizer_trained == (False, False)
    assert [t.transition for t in report.transitions] == [0, 1]
    for t in report.transitions:
        assert t.loss_end < t.loss_start, t
    assert [(s.transition, s.step) for s in steps] == [(i, j) for i in (0, 1) for j in range(1, 26)]
    after = session.snapshot()
    assert changed(before_stages, stages_of(session)) == [1, 2]  # the first stage is never regenerated
    assert all(torch.equal(a, b) for a, b in zip(before.latents, after.latents, strict=True))
    assert all(torch.count_nonzero(d) > 0 for d in after.deltas)
    assert all(torch.equal(a, b) for a, b in zip(before.targets, after.targets, strict=True))
    # The session's stages are what its latents + deltas generate.
    torch.testing.assert_close(session.stages[1], session.generate(0).clamp(-1, 1), rtol=0, atol=1e-5)


def test_refine_reaches_known_targets_through_the_chain(model):
    """Targets made by the same model with KNOWN deltas; a session that starts at delta = 0 gets close to them."""
    author = Session(model, "cpu")
    author.start_from(image(1, seed=40))
    for i in range(2):
        author.sample_latent(i, seed=41 + i, propagate=False)
        author.deltas[i] = torch.randn(author.deltas[i].shape, generator=torch.Generator().manual_seed(43 + i)) * 0.4
    author.propagate(0)
    goal = author.snapshot()

    editor = Session(model, "cpu")
    editor.start_from(goal.bases[0])
    for i in range(2):
        editor.set_latent(i, goal.latents[i])
    editor.targets = [s.clone() for s in goal.bases]
    l1_start = [F.l1_loss(editor.stages[k], goal.bases[k]).item() for k in (1, 2)]
    assert min(l1_start) > 0.03
    report = run_to_end(editor.refine(steps=80, regularizer="none"))
    assert report.completed
    l1_end = [F.l1_loss(editor.stages[k], goal.bases[k]).item() for k in (1, 2)]
    for a, b in zip(l1_start, l1_end, strict=True):
        assert b < 0.3 * a, (l1_start, l1_end)


def test_large_learned_weight_keeps_deltas_near_zero():
    free, held = Session(tiny_model(seed=0), "cpu"), Session(tiny_model(seed=0), "cpu")
    for w in held.model.reg_weights:
        w.data.fill_(1e3)
    for s in (free, held):
        s.load_artwork(image(3, seed=1))
    run_to_end(free.refine(steps=30, regularizer="none"))
    run_to_end(held.refine(steps=30, regularizer="learned"))
    for a, b in zip(held.deltas, free.deltas, strict=True):
        assert a.norm() < 0.01 * b.norm(), (a.norm(), b.norm())


def test_refine_twice_starts_from_the_refined_deltas(session):
    r1 = run_to_end(session.refine(steps=15))
    r2 = run_to_end(session.refine(steps=15))
    for a, b in zip(r1.transitions, r2.transitions, strict=True):
        assert b.loss_start < a.loss_start


def test_unknown_regularizer(session):
    with pytest.raises(ArtflowError, match="unknown regularizer"):
        run_to_end(session.refine(regularizer="ridge"))


# ----- cancel -----

@pytest.mark.parametrize("n", [0, 4, 13])
def test_cancelled_refine_leaves_the_session_unchanged(session, n):
    before = session.snapshot()
    stop = StopAfter(n)
    steps, report = drive(session.refine(steps=10, should_stop=stop), stop.seen)
    assert len(steps) == n  # stops within one step of the request
    assert not report.completed
    assert len(report.transitions) == n // 10  # only transitions that finished are reported
    assert states_equal(before, session.snapshot())


def test_abandoned_refine_generator_leaves_the_session_unchanged(session):
    before = session.snapshot()
    gen = session.refine(steps=10)
    for _ in range(12):
        next(gen)
    gen.close()
    assert states_equal(before, session.snapshot())


# ----- snapshots -----

def test_restore_snapshot_is_bit_exact(session):
    run_to_end(session.refine(steps=5))
    snap = session.snapshot()
    kept = session.snapshot()
    session.sample_latent(0, seed=5)
    session.deltas[1] += 0.5
    session.set_stage(1, image(3, seed=6))
    session.targets = None
    assert not states_equal(snap, session.snapshot())
    assert states_equal(snap, kept)  # a snapshot does not alias the live session
    session.restore(snap)
    assert states_equal(snap, session.snapshot())
    session.stages[2].fill_(0)  # nor does the session alias a restored snapshot
    assert states_equal(snap, kept)


def test_restore_without_targets(model):
    s = Session(model, "cpu")
    s.start_from(image(1, seed=3))
    snap = s.snapshot()
    assert snap.targets is None
    s.load_artwork(image(3, seed=4))
    s.restore(snap)
    assert s.targets is None and states_equal(snap, s.snapshot())


def _bad_states(good: SessionState) -> dict[str, SessionState]:
    st, z, d = good.bases, good.latents, good.deltas
    return {
        "too few stages": dataclasses.replace(good, bases=st[:2]),
        "stage channels": dataclasses.replace(good, bases=(st[1],) + st[1:]),
        "stage size": dataclasses.replace(good, bases=st[:2] + (torch.zeros(3, RES * 2, RES * 2),)),
        "too few layers": dataclasses.replace(good, layers=(None,)),
        "layer colour": dataclasses.replace(good, layers=(None, (torch.zeros(1, RES, RES), torch.ones(1, RES, RES)),
                                                          None)),
        "layer alpha": dataclasses.replace(good, layers=(None, (torch.zeros(3, RES, RES), torch.ones(3, RES, RES)),
                                                         None)),
        "latent size": dataclasses.replace(good, latents=(torch.zeros(3),) + z[1:]),
        "delta size": dataclasses.replace(good, deltas=d[:1] + (torch.zeros(5),)),
        "too few deltas": dataclasses.replace(good, deltas=d[:1]),
        "target size": dataclasses.replace(good, targets=(torch.zeros(2, RES, RES),) + good.targets[1:]),
    }


@pytest.mark.parametrize("case", ["too few stages", "stage channels", "stage size", "too few layers", "layer colour",
                                  "layer alpha", "latent size", "delta size", "too few deltas", "target size"])
def test_restore_rejects_a_state_that_does_not_fit(session, case):
    good = session.snapshot()
    session.sample_latent(0, seed=9)
    current = session.snapshot()
    with pytest.raises(ArtflowError):
        session.restore(_bad_states(good)[case])
    assert states_equal(current, session.snapshot())  # a rejected restore changes nothing


def test_wrong_shaped_stage_images_are_rejected(session):
    before = session.snapshot()
    bad = [(0, torch.zeros(3, RES, RES), "1x32x32"), (1, torch.zeros(1, RES, RES), "3x32x32"),
           (2, torch.zeros(3, 16, 16), "3x32x32"), (2, torch.zeros(RES, RES), "3x32x32")]
    for k, img, needed in bad:
        with pytest.raises(ArtflowError, match=needed):
            session.set_stage(k, img)
    with pytest.raises(ArtflowError, match="out of range"):
        session.set_stage(3, torch.zeros(3, RES, RES))
    with pytest.raises(ArtflowError):
        session.infer_stages(torch.zeros(1, RES, RES))
    with pytest.raises(ArtflowError):
        session.load_artwork(torch.zeros(3, RES + 1, RES))
    with pytest.raises(ArtflowError, match="8 values"):
        session.set_latent(0, torch.zeros(5))
    with pytest.raises(ArtflowError, match="out of range"):
        session.set_latent(2, torch.zeros(8))
    with pytest.raises(ArtflowError, match="out of range"):
        session.propagate(-1)
    assert states_equal(before, session.snapshot())


def test_stage_images_are_normalised(session):
    img = image(3, seed=12)[None] * 3  # a batch of one, out of range
    session.set_stage(1, img, propagate=False)
    assert session.stages[1].shape == (3, RES, RES)
    assert torch.equal(session.stages[1], img[0].clamp(-1, 1))


# ----- four stages -----

def test_four_stages_end_to_end():
    m = tiny_model(seed=5, stages=FOUR_STAGES)
    s = Session(m, "cpu")
    assert s.num_stages == 4 and s.stage_names == ["sketch", "flat", "shading", "detail"]
    s.load_artwork(image(3, seed=13))
    assert [tuple(x.shape) for x in s.stages] == [(c, RES, RES) for c in (1, 3, 1, 3)]
    assert [tuple(x.shape) for x in s.targets] == [(c, RES, RES) for c in (1, 3, 1, 3)]
    assert len(s.latents) == 3 and len(s.deltas) == 3

    s.set_stage(2, image(1, seed=14), propagate=False)
    before = stages_of(s)
    assert s.propagate(2) == [3]
    assert changed(before, stages_of(s)) == [3]
    before = stages_of(s)
    assert s.set_latent(0, torch.ones(8)) == [1, 2, 3]
    assert changed(before, stages_of(s)) == [1, 2, 3]

    s.encode()
    before, before_stages = s.snapshot(), stages_of(s)
    stop = StopAfter(25)
    steps, cancelled = drive(s.refine(steps=10, should_stop=stop), stop.seen)
    assert len(steps) == 25 and not cancelled.completed and states_equal(before, s.snapshot())

    report = run_to_end(s.refine(steps=20))
    assert report.completed and [t.transition for t in report.transitions] == [0, 1, 2]
    for t in report.transitions:
        assert t.loss_end < t.loss_start, t
    assert changed(before_stages, stages_of(s)) == [1, 2, 3]
    assert [tuple(x.shape) for x in s.stages] == [(c, RES, RES) for c in (1, 3, 1, 3)]


# ----- determinism -----

def test_cpu_results_are_deterministic_for_a_seed():
    def run(seed):
        s = Session(tiny_model(seed=seed), "cpu")
        s.load_artwork(image(3, seed=1))
        s.sample_latent(1, seed=2)
        run_to_end(s.refine(steps=8))
        return s.snapshot()

    a, b = run(0), run(0)
    assert states_equal(a, b)
    assert not states_equal(a, run(1))


# ----- artist layers -----

def _half_layer(channels: int, seed: int):
    colour = image(channels, seed=seed)
    alpha = torch.zeros(1, RES, RES)
    alpha[:, :, : RES // 2] = 1
    return colour, alpha


def test_artist_layer_stays_on_top_when_earlier_stages_change(session):
    colour, alpha = _half_layer(3, seed=60)
    assert session.set_layer(1, (colour, alpha)) == [2]
    assert torch.equal(session.stages[1], compose(session.bases[1], (colour, alpha)))
    assert torch.equal(session.stages[1][:, :, : RES // 2], colour[:, :, : RES // 2])
    old_base = session.bases[1].clone()
    session.set_stage(0, image(1, seed=61))
    assert not torch.equal(session.bases[1], old_base)  # the generated base was regenerated ...
    assert torch.equal(session.stages[1][:, :, : RES // 2], colour[:, :, : RES // 2])  # ... the paint kept
    assert torch.equal(session.stages[1][:, :, RES // 2:], session.bases[1][:, :, RES // 2:])
    assert torch.equal(session.stages[2], session.generate(1))  # the next stage is made from the composite
    before = stages_of(session)
    assert session.set_layer(1, None) == [2]
    assert torch.equal(session.stages[1], session.bases[1])
    assert changed(before, stages_of(session)) == [1, 2]


def test_bad_layer_is_rejected(session):
    before = session.snapshot()
    with pytest.raises(ArtflowError):
        session.set_layer(1, (torch.zeros(3, RES, RES), torch.ones(1, RES // 2, RES // 2)))
    with pytest.raises(ArtflowError):
        session.set_layer(0, (torch.zeros(3, RES, RES), torch.ones(1, RES, RES)))
    assert states_equal(before, session.snapshot())


def test_layers_survive_snapshot_and_refine(session):
    session.set_layer(2, _half_layer(3, seed=62))
    snap = session.snapshot()
    session.set_layer(2, None)
    session.restore(snap)
    assert states_equal(snap, session.snapshot())
    report = run_to_end(session.refine(steps=5))
    assert report.completed
    assert states_equal(dataclasses.replace(snap, bases=(), deltas=()),
                        dataclasses.replace(session.snapshot(), bases=(), deltas=()))  # layers kept
    assert torch.equal(session.stages[2], compose(session.bases[2], session.layers[2]))


def test_start_from_clears_the_previous_artworks_layers(session):
    session.set_layer(1, _half_layer(3, seed=63))
    session.start_from(image(1, seed=64))
    assert session.layers == [None] * session.num_stages
    assert all(torch.equal(s, b) for s, b in zip(session.stages, session.bases, strict=True))


# ----- the content cache (live slider) and the small preview -----

def _uncached_chain(session, k):
    """Stages k+1.. regenerated with no cache: the reference the cached path must equal."""
    out, src = [], session.stages[k]
    for i in range(k, session.num_stages - 1):
        base = session.generate(i, source=src, cache=False)
        src = compose(base, session.layers[i + 1])
        out.append(src)
    return out


def test_cached_propagation_equals_uncached(session):
    for seed in range(3):  # slider moves on either transition: the cache serves the unchanged inputs
        for i in range(session.num_stages - 1):
            session.set_latent(i, torch.randn(session.latents[i].shape, generator=torch.Generator().manual_seed(seed)))
            assert all(torch.equal(a, b) for a, b in zip(session.stages[i + 1:], _uncached_chain(session, i)))
    cached = stages_of(session)
    session.propagate(0, cache=False)
    assert changed(cached, stages_of(session)) == []


def test_content_cache_serves_an_unchanged_input_only(session):
    src = session.stages[0]
    code = session.content(0, src)
    assert session.content(0, src.clone()) is code  # equal input: the cached code
    other = src.clone()
    other[0, 0, 0] = -other[0, 0, 0] if other[0, 0, 0] != 0 else 0.5
    assert session.content(0, other) is not code


def test_cache_follows_a_change_of_an_earlier_stage(session):
    session.set_latent(0, session.latents[0] + 0.5)  # fills the cache for stage 0 and stage 1
    session.set_stage(0, image(1, seed=7))  # a new first stage
    assert all(torch.equal(a, b) for a, b in zip(session.stages[1:], _uncached_chain(session, 0)))
    session.stages[0].mul_(-1)  # even an in-place change of the input tensor is seen
    session.propagate(0)
    assert all(torch.equal(a, b) for a, b in zip(session.stages[1:], _uncached_chain(session, 0)))
    # A layer over stage 1 changes the input of transition 1; a latent change of transition 1 then uses it.
    session.set_layer(1, (torch.ones(3, RES, RES), torch.full((1, RES, RES), 0.5)))
    session.set_latent(1, session.latents[1] - 0.5)
    assert torch.equal(session.stages[2], _uncached_chain(session, 1)[0])
    # restore() brings other inputs: no stale code.
    state = session.snapshot()
    session.start_from(image(1, seed=8))
    session.restore(state)
    session.propagate(0)
    assert all(torch.equal(a, b) for a, b in zip(session.stages[1:], _uncached_chain(session, 0)))


def test_preview_is_the_chain_at_a_smaller_size_without_changing_the_session(session):
    session.set_layer(1, (torch.ones(3, RES, RES), torch.full((1, RES, RES), 0.5)))
    before = session.snapshot()
    full = session.preview(0, size=RES)
    session.propagate(0)
    assert all(torch.equal(a, b) for a, b in zip(full, session.stages[1:]))  # full size: the propagated stages
    session.restore(before)
    small = session.preview(0)
    assert [tuple(s.shape) for s in small] == [(3, RES // 2, RES // 2)] * 2
    assert states_equal(before, session.snapshot())
    for bad in (RES * 2, RES - 1, 24):  # larger, or not the resolution halved
        with pytest.raises(ArtflowError, match="preview size"):
            session.preview(0, size=bad)
    with pytest.raises(ArtflowError, match="latent code has 8 values"):
        session.preview(0, latent=torch.zeros(3))


def test_preview_of_a_new_code_is_that_codes_chain(session):
    """preview(k, latent=z) is what set_latent(k, z) would make, at full size bit for bit; at half size the
    changed transition decodes the same (cached) content code without its last upsampling."""
    z = session.latents[0] + 1.5
    before = session.snapshot()
    full = session.preview(0, RES, latent=z)
    half = session.preview(0, RES // 2, latent=z)
    assert states_equal(before, session.snapshot())  # neither changed the session
    session.set_latent(0, z)
    assert all(torch.equal(a, b) for a, b in zip(full, session.stages[1:]))
    g = session.model.generators[0]
    with torch.inference_mode():
        code = g.encode_content(before.bases[0][None])
        expected = g.decode(code, g.adain_params(z[None]) + before.deltas[0][None], halvings=1)[0]
    torch.testing.assert_close(half[0], expected, rtol=0, atol=1e-4)  # the reference modules, to float rounding
    # A cold cache (a fresh session on the same state) gives the same preview: cached and uncached agree.
    cold = Session(session.model, "cpu")
    cold.restore(before)
    assert all(torch.equal(a, b) for a, b in zip(cold.preview(0, RES // 2, latent=z), half))


def _reference_preview(session: Session, k: int, size: int, z: torch.Tensor) -> list[torch.Tensor]:
    """Session.preview as the reference modules compute it (AdaINGenerator.encode_content and decode, no cache):
    the path that core.nn.inference replaced in the session."""
    out, src = [], session.stages[k]
    with torch.inference_mode():
        for i in range(k, session.num_stages - 1):
            g = session.model.generators[i]
            params = g.adain_params((z if i == k else session.latents[i])[None]) + session.deltas[i][None]
            halvings = (session.config.resolution // size).bit_length() - 1 if i == k else 0
            base = g.decode(g.encode_content(src[None]), params, halvings)[0].clone()
            layer = session.layers[i + 1]
            if layer is not None:
                colour, alpha = (F.interpolate(t[None], size=(size, size), mode="area")[0] for t in layer)
                base = compose(base, (colour, alpha))
            src = base
            out.append(src)
    return out


@pytest.mark.parametrize("up_kernel", [3, 5])  # 3: the bundled model's (phase convolutions), 5: MUNIT's
def test_preview_and_propagate_equal_the_reference_modules(up_kernel):
    """The session's pictures come from the quicker inference forward; at every preview size, on every
    transition, with a layer over a middle stage, they are the reference modules' pictures to float rounding."""
    cfg = tiny_model().config
    cfg = dataclasses.replace(cfg, generator=dataclasses.replace(cfg.generator, up_kernel=up_kernel))
    torch.manual_seed(3)
    s = Session(WorkflowModel(cfg).eval().requires_grad_(False), "cpu")
    s.load_artwork(image(3, seed=1))
    s.deltas = [torch.randn(d.shape, generator=torch.Generator().manual_seed(5)) * 0.3 for d in s.deltas]
    s.set_layer(1, (torch.ones(3, RES, RES), torch.full((1, RES, RES), 0.5)))
    for k in range(s.num_stages - 1):
        z = s.latents[k] + 1.0
        for size in (RES, RES // 2, RES // 4):
            for got, want in zip(s.preview(k, size, latent=z), _reference_preview(s, k, size, z), strict=True):
                assert got.shape == want.shape and got.is_contiguous()
                torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    s.propagate(0)
    torch.testing.assert_close(s.stages[1:], _reference_preview(s, 0, RES, s.latents[0]), rtol=0, atol=1e-4)


def test_decode_halvings_skip_the_last_upsamplings(model):
    g = model.generators[0]
    x = image(1, seed=4)[None]
    with torch.inference_mode():
        code, params = g.encode_content(x), g.adain_params(torch.zeros(1, 8))
        assert torch.equal(g.decode(code, params, 0), g(x, torch.zeros(1, 8)))
        assert [g.decode(code, params, h).shape[-1] for h in range(3)] == [RES, RES // 2, RES // 4]
        with pytest.raises(ValueError, match="halvings"):
            g.decode(code, params, 3)


def test_fast_and_exact_schedules_agree_through_the_session(session):
    """The session's fast schedule starts where the exact one does (the same first loss), takes no more steps and
    reconstructs as closely (within 0.3 dB here; benchmarks/bench_refine.py measures the bundled model); an
    unknown schedule is a clear error that leaves the session as it was."""
    from core.evaluation.metrics import psnr_01

    start = session.snapshot()
    art = session.targets[-1]
    runs, losses = {}, {}
    for name in ("exact", "fast"):
        session.restore(start)
        steps = []
        report = run_to_end(session.refine(schedule=name, preview_every=0), steps.append)
        assert report.completed and report.extra["schedule"] == name
        runs[name] = (float(psnr_01(session.stages[-1][None], art[None])[0]), len(steps))
        losses[name] = [st.loss for st in steps if st.transition == 0]
    assert losses["fast"][0] == losses["exact"][0]  # the same start: only the step sizes differ
    assert runs["fast"][0] > runs["exact"][0] - 0.3, runs
    assert runs["fast"][1] <= runs["exact"][1] == 150 * (session.num_stages - 1), runs
    session.restore(start)
    with pytest.raises(ArtflowError, match="unknown schedule"):
        run_to_end(session.refine(schedule="quick"))
    assert states_equal(start, session.snapshot())
