"""AdaIN optimisation (core.editing.refine) and the regularised Adam step (core.editing.regularizer)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.editing.refine import LAMBDA_P, STEP_SIZE, STEPS, refine_transition
from core.editing.regularizer import AdamMoments, regularized_step
from core.nn.perceptual import make_perceptual
from tests.core.engine_util import StopAfter, drive, image, single_thread, tiny_model  # noqa: F401


def test_paper_hyperparameters():
    # Supplementary, "AdaIN optimization": lambda_p = 10, alpha = 0.1, T = 150.
    assert (LAMBDA_P, STEP_SIZE, STEPS) == (10.0, 0.1, 150)


@pytest.fixture(scope="module")
def problem():
    """A random tiny generator and a target made with KNOWN AdaIN parameters: MLP(z) + known delta."""
    model = tiny_model(seed=3)
    g = model.generators[0]
    src = image(1, seed=10)
    torch.manual_seed(11)
    z = torch.randn(1, g.cfg.z_dim)
    with torch.no_grad():
        base = g.adain_params(z)[0]
        known = torch.randn(base.shape) * 0.5
        content = g.encode_content(src[None])
        target = g.decode(content, (base + known)[None])[0]
        start = g.decode(content, base[None])[0]
    return {"model": model, "g": g, "src": src, "base": base, "known": known, "target": target, "start": start,
            "perc": make_perceptual(model.discriminators[0], None)}


def _refine(p, w, steps=80, delta=None, **kw):
    delta = torch.zeros_like(p["base"]) if delta is None else delta
    return drive(refine_transition(p["g"], p["perc"], p["src"], p["target"], p["base"], delta, w, steps=steps, **kw))


@pytest.mark.parametrize("reg", ["none", "init"])
def test_refine_reaches_known_target(problem, reg):
    p = problem
    w = None if reg == "none" else p["model"].reg_weights[0]  # 'init': the untrained learned weight (1e-3)
    l1_start = F.l1_loss(p["start"], p["target"]).item()
    assert l1_start > 0.05  # the known delta makes a visible difference
    steps, res = _refine(p, w)
    assert res.completed
    assert res.loss_end < 0.2 * res.loss_start
    l1_end = F.l1_loss(res.output, p["target"]).item()
    assert l1_end < 0.25 * l1_start, (l1_start, l1_end)
    # The optimised delta moved towards the known one (the AdaIN parameters are not fully identifiable, so only
    # "closer than the start" is asserted).
    assert (res.delta - p["known"]).abs().mean() < 0.75 * p["known"].abs().mean()
    # The reported output is what the generator makes with the returned delta.
    with torch.no_grad():
        again = p["g"].decode(p["g"].encode_content(p["src"][None]), (p["base"] + res.delta)[None])[0]
    torch.testing.assert_close(res.output, again, rtol=0, atol=1e-5)
    assert res.delta.shape == p["base"].shape and res.output.shape == p["target"].shape


def test_refine_yields_every_step_with_previews(problem):
    steps, res = _refine(problem, None, steps=25, preview_every=10, transition=4)
    assert [s.step for s in steps] == list(range(1, 26))
    assert all(s.steps == 25 and s.transition == 4 for s in steps)
    assert [s.step for s in steps if s.preview is not None] == [10, 20, 25]
    for s in steps:
        assert torch.isfinite(torch.tensor(s.loss))
        if s.preview is not None:
            assert s.preview.shape == problem["target"].shape and s.preview.device.type == "cpu"
    assert steps[0].loss == res.loss_start
    assert steps[-1].loss > res.loss_end  # the reported end loss is after the last update
    _, none = _refine(problem, None, steps=5, preview_every=0)
    assert none.completed


def test_refine_does_not_mutate_inputs(problem):
    p = problem
    delta = torch.full_like(p["base"], 0.01)
    copies = [t.clone() for t in (p["src"], p["target"], p["base"], delta)]
    _refine(p, None, steps=5, delta=delta)
    for a, b in zip(copies, (p["src"], p["target"], p["base"], delta), strict=True):
        assert torch.equal(a, b)


def test_refine_works_inside_no_grad(problem):
    with torch.no_grad():
        _, res = _refine(problem, None, steps=20)
    assert res.loss_end < res.loss_start


def test_zero_steps(problem):
    steps, res = _refine(problem, None, steps=0)
    assert steps == [] and res.completed
    assert res.loss_start == res.loss_end and torch.equal(res.delta, torch.zeros_like(problem["base"]))


def test_large_regularizer_keeps_delta_near_zero(problem):
    p = problem
    _, free = _refine(p, None)
    _, zero_w = _refine(p, torch.zeros_like(p["base"]))
    _, big_w = _refine(p, torch.full_like(p["base"], 1e3))
    assert torch.equal(free.delta, zero_w.delta)  # w = 0 is exactly the unregularised optimisation
    assert big_w.delta.norm() < 0.01 * free.delta.norm(), (big_w.delta.norm(), free.delta.norm())
    # ... so the output hardly moves from the unrefined one, and the loss barely drops.
    assert F.l1_loss(big_w.output, p["start"]) < 0.05 * F.l1_loss(free.output, p["start"])
    assert big_w.loss_end > 0.9 * big_w.loss_start


def test_regularizer_is_per_parameter(problem):
    """w large on the AdaIN biases only: the biases stay near 0 while the scales move freely."""
    p = problem
    is_bias = p["g"].adain_param_is_bias()
    assert is_bias.shape == p["base"].shape and 0 < int(is_bias.sum()) < is_bias.numel()
    w = torch.where(is_bias, torch.tensor(1e3), torch.tensor(0.0))
    _, res = _refine(p, w)
    bias_move = res.delta[is_bias].abs().mean()
    scale_move = res.delta[~is_bias].abs().mean()
    assert bias_move < 0.02 * scale_move, (bias_move, scale_move)


def test_negative_learned_weight_counts_as_zero():
    torch.manual_seed(0)
    delta, grad = torch.randn(1, 6), torch.randn(1, 6)
    a, _ = regularized_step(delta, grad, torch.full((6,), -5.0), AdamMoments.zeros_like(delta), 0.1)
    b, _ = regularized_step(delta, grad, None, AdamMoments.zeros_like(delta), 0.1)
    assert torch.equal(a, b)


def test_regularized_step_is_adam_on_grad_plus_w_delta():
    torch.manual_seed(0)
    target = torch.randn(1, 16)
    w = torch.rand(16)
    ours = torch.zeros(1, 16)
    state = AdamMoments.zeros_like(ours)
    ref = torch.zeros(1, 16, requires_grad=True)
    opt = torch.optim.Adam([ref], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(20):
        grad = 2 * (ours - target)  # d/d delta of ||delta - target||^2
        ours, state = regularized_step(ours, grad, w, state, 0.05)
        opt.zero_grad()
        ((ref - target) ** 2).sum().backward()
        ref.grad += w * ref.detach()  # the L2 term of Algorithm 1, line 8
        opt.step()
    assert state.t == 20
    torch.testing.assert_close(ours, ref.detach(), rtol=1e-5, atol=1e-6)


def test_regularized_step_is_differentiable_in_w():
    """Algorithm 1 learns w through the optimisation step: the gradient w.r.t. w must exist and be finite."""
    torch.manual_seed(0)
    w = torch.full((8,), 1e-3, requires_grad=True)
    delta = torch.zeros(1, 8)
    state = AdamMoments.zeros_like(delta)
    target = torch.randn(1, 8)
    for _ in range(3):
        grad = 2 * (delta - target)  # dL/d delta of L = ||delta - target||^2, kept in the graph
        delta, state = regularized_step(delta, grad, w, state, 0.1)
    ((delta - target) ** 2).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_cancel_stops_within_one_step(problem):
    for n in (0, 1, 7):
        stop = StopAfter(n)
        gen = refine_transition(problem["g"], problem["perc"], problem["src"], problem["target"], problem["base"],
                                torch.zeros_like(problem["base"]), None, steps=30, should_stop=stop)
        steps, res = drive(gen, stop.seen)
        assert len(steps) == n, (n, len(steps))
        assert not res.completed
        if n == 0:
            assert torch.equal(res.delta, torch.zeros_like(problem["base"]))


def test_stop_never_true_completes(problem):
    stop = StopAfter(10**9)
    gen = refine_transition(problem["g"], problem["perc"], problem["src"], problem["target"], problem["base"],
                            torch.zeros_like(problem["base"]), None, steps=12, should_stop=stop)
    steps, res = drive(gen, stop.seen)
    assert len(steps) == 12 and res.completed and stop.calls == 12  # checked before every step


# ----- schedules: the fast path against the paper's exact one -----

def test_fast_schedule_degenerating_to_exact_is_bit_identical(problem):
    """With a constant step size, no half-size steps and no early stop, the fast loop is the exact loop."""
    _, exact = _refine(problem, None, steps=30)
    _, same = _refine(problem, None, steps=30, lr_end=STEP_SIZE, coarse_steps=0, stop_window=0)
    assert torch.equal(exact.delta, same.delta) and torch.equal(exact.output, same.output)


def test_fast_schedule_agrees_with_exact(problem):
    """The fast schedule (early stop on a flat loss) lands on the same picture as the exact one: on a target the
    generator can reproduce, both get within 45 dB of it and of each other (where 0.1 dB differences mean nothing;
    the session test below compares the PSNR of a real reconstruction)."""
    from core.editing.refine import SCHEDULES
    from core.evaluation.metrics import psnr_01

    p = problem
    w = p["model"].reg_weights[0]
    fast = SCHEDULES["fast"]
    _, exact = _refine(p, w, steps=STEPS)
    steps, quick = _refine(p, w, steps=fast.steps, lr=fast.lr, lr_end=fast.lr_end, coarse_steps=fast.coarse_steps,
                           stop_window=fast.stop_window, stop_tol=fast.stop_tol)
    assert quick.completed and len(steps) <= fast.steps
    psnr = {k: float(psnr_01(v[None], p["target"][None])[0])
            for k, v in (("exact", exact.output), ("fast", quick.output), ("start", p["start"]))}
    assert min(psnr["fast"], psnr["exact"]) > 45 > psnr["start"] + 20, psnr
    assert float(psnr_01(quick.output[None], exact.output[None])[0]) > 45


def test_coarse_steps_run_at_half_size_and_return_full_size(problem):
    p = problem
    steps, res = _refine(p, None, steps=30, coarse_steps=20, preview_every=5)
    half = p["target"].shape[-1] // 2
    assert [s.preview.shape[-1] for s in steps if s.preview is not None] == [half] * 4 + [p["target"].shape[-1]] * 2
    assert res.output.shape == p["target"].shape and res.loss_end < 0.5 * res.loss_start
    _, all_coarse = _refine(p, None, steps=10, coarse_steps=10)
    assert all_coarse.output.shape == p["target"].shape


def test_early_stop_on_a_flat_loss(problem):
    steps, res = _refine(problem, None, steps=100, stop_window=5, stop_tol=0.5)  # 50 % in 5 steps: soon flat
    assert res.completed and 5 < len(steps) < 100
    assert steps[-1].preview is not None  # the last step shows its picture, as at the normal end


def test_unknown_schedule_is_a_clear_error():
    from core.editing.refine import schedule_named
    from core.errors import ArtflowError

    with pytest.raises(ArtflowError, match="unknown schedule 'quick'"):
        schedule_named("quick")
    assert schedule_named("exact").steps == STEPS and schedule_named("exact").lr == STEP_SIZE


@pytest.mark.parametrize("reg", ["none", "init"])
def test_static_step_matches_the_eager_loop(problem, reg):
    """The fixed-tensor step (what a CUDA graph replays on a GPU) computes the eager loop's update: same deltas,
    losses and previews over 20 steps with a decaying step size (run eagerly here; capture needs CUDA)."""
    from core.editing.refine_graph import StaticStep

    p = problem
    w = None if reg == "none" else p["model"].reg_weights[0] * 50
    g, perc = p["g"], p["perc"]
    start = torch.randn(p["base"].shape, generator=torch.Generator().manual_seed(5)) * 0.1
    steps, res = _refine(p, w, steps=20, delta=start, lr_end=0.02, preview_every=1)
    with torch.no_grad():
        content = g.encode_content(p["src"][None])
        t_feats = perc.features(p["target"][None])

    def loss_of(out):
        return F.l1_loss(out, p["target"][None]) + LAMBDA_P * perc.distance(perc.features(out), t_feats)

    static = StaticStep(g, loss_of, content, p["base"][None], start[None], w)
    for i in range(20):
        static.run(STEP_SIZE + (0.02 - STEP_SIZE) * i / 19)
        assert float(static.loss) == pytest.approx(steps[i].loss, rel=1e-5, abs=1e-6)
        torch.testing.assert_close(static.output[0], steps[i].preview, rtol=0, atol=1e-5)
    torch.testing.assert_close(static.delta[0], res.delta, rtol=1e-4, atol=1e-6)
    assert not torch.equal(static.delta[0], start)  # it moved


def test_static_step_capture_needs_cuda(problem):
    from core.editing.refine_graph import StaticStep

    p = problem
    static = StaticStep(p["g"], lambda out: out.abs().mean(), p["g"].encode_content(p["src"][None]),
                        p["base"][None], torch.zeros_like(p["base"])[None], None)
    with pytest.raises(RuntimeError, match="CUDA"):
        static.capture()


def test_static_step_in_bf16_autocast_still_refines(problem):
    """The bf16 option (measured on CUDA by benchmarks/bench_paper.py) keeps the update in fp32 and still lowers
    the loss; checked here with the CPU's autocast."""
    from core.editing.refine_graph import StaticStep

    p = problem
    g, perc = p["g"], p["perc"]
    with torch.no_grad():
        content = g.encode_content(p["src"][None])
        t_feats = perc.features(p["target"][None])

    def loss_of(out):
        return F.l1_loss(out.float(), p["target"][None]) + LAMBDA_P * perc.distance(perc.features(out), t_feats)

    static = StaticStep(g, loss_of, content, p["base"][None], torch.zeros_like(p["base"])[None], None,
                        autocast_dtype=torch.bfloat16)
    losses = []
    for _ in range(30):
        static.run(STEP_SIZE)
        losses.append(float(static.loss))
    assert static.delta.dtype == torch.float32 and static.output.dtype == torch.float32
    assert losses[-1] < 0.5 * losses[0], losses
