"""The editing session: one artwork's stages, the latent code z and the refined AdaIN delta of each transition.

Plain Python over tensors. Stage images are (C, H, W) float32 CPU tensors in [-1, 1]; latents are (z_dim,);
deltas are (P,). All network work runs on the session's device. One thread owns a session (the app's engine
thread, or the CLI's main thread).

Why one module of about 410 lines: every operation here reads or replaces the same per-stage state (bases, layers,
latents, deltas, targets, the content cache), which must change together; the step math lives in core.editing.refine and
core.nn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.editing.refine import (
    DEFAULT_SCHEDULE,
    LAMBDA_P,
    RefineStep,
    Schedule,
    TransitionResult,
    refine_transition,
    schedule_named,
)
from core.editing.regularizer import Regularizer
from core.errors import ArtflowError
from core.model import WorkflowModel
from core.nn.inference import FastGenerator
from core.nn.perceptual import Perceptual, PerceptualKind, make_perceptual, vgg_weights_path
from core.nn.vgg import VGG16Features
from core.platform.device import resolve_device
from core.platform.threads import ThreadGovernor
from core.session_state import Layer, SessionState, compose

# Random codes stay within +-3 standard deviations of the latent prior: beyond, artefacts (supplementary, Fig. 3).
# Also the sliders' range of raw z values.
Z_RANGE = 3.0
REGULARIZERS = tuple(r.value for r in Regularizer)  # "learned", "none"


@dataclass(frozen=True)
class LaterPreview:
    """The later stages of a slider preview (Session.preview_split): each later transition's inference forward,
    its AdaIN parameters and the artist's layer at the preview's size, taken from the session when it was made.
    Calling it with the first stage's preview reads nothing else of the session, so another thread may run it
    while the owner goes on, as long as the session's generators are not used for anything else meanwhile."""

    fast: tuple[FastGenerator, ...]
    params: tuple[torch.Tensor, ...]
    layers: tuple[Layer | None, ...]
    device: torch.device

    def __call__(self, first: torch.Tensor) -> list[torch.Tensor]:
        out, src = [], first
        for fast, params, layer in zip(self.fast, self.params, self.layers):
            with torch.inference_mode():
                code = fast.encode_content(src.unsqueeze(0).to(self.device))
                base = fast.decode(code, params, 0, None)
            base = base[0].float().cpu().clone(memory_format=torch.contiguous_format)  # as Session.generate's
            src = compose(base, layer)
            out.append(src)
        return out


@dataclass(frozen=True)
class TransitionReport:
    transition: int
    loss_start: float
    loss_end: float
    seconds: float


@dataclass(frozen=True)
class RefineReport:
    transitions: tuple[TransitionReport, ...]
    regularizer: Regularizer
    regularizer_trained: tuple[bool, ...]
    perceptual: PerceptualKind
    completed: bool  # False when cancelled: then the session is unchanged
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class Session:
    """Each stage k has a base image (generated from stage k-1, or drawn/inferred for stage 0) and an optional
    artist layer over it; `stages[k]` is their composite. When an earlier stage changes, bases are regenerated and
    the artist's layers stay on top, so painted work is never lost."""

    def __init__(self, model: WorkflowModel, device: str | torch.device = "auto",
                 vgg_weights: str | None = None, adapt_threads: bool = False) -> None:
        self.device = resolve_device(device)
        # adapt_threads: on a CPU, refine and propagate use the cores other programs leave free
        # (core/platform/threads.py), instead of stalling on a busy one; off by default because the thread count
        # changes float rounding.
        self.governor = ThreadGovernor() if adapt_threads and self.device.type == "cpu" else None
        # channels_last: ~1.3x faster convolutions for the refinement on CPU (measured), no harm on CUDA.
        self.model = model.to(self.device, memory_format=torch.channels_last).eval().requires_grad_(False)
        self.config = model.config
        # The pictures are made by the inference-only forward (same weights, same pictures to float rounding,
        # 0.55-0.8x the time on a CPU: the live slider's budget); refinement differentiates the reference modules.
        self._fast = [FastGenerator(g) for g in self.model.generators]
        vgg_path = vgg_weights_path(vgg_weights)
        self._vgg = VGG16Features.from_file(vgg_path).to(self.device) if vgg_path else None
        self._perceptual: dict[int, Perceptual] = {}
        n, res = self.config.num_stages, self.config.resolution
        self.bases: list[torch.Tensor] = [torch.ones(s.channels, res, res) for s in self.config.stages]
        self.layers: list[Layer | None] = [None] * n
        self.stages: list[torch.Tensor] = [b.clone() for b in self.bases]
        self.latents: list[torch.Tensor] = self._prior_means()
        self.deltas: list[torch.Tensor] = [torch.zeros(g.num_adain_params) for g in self.model.generators]
        # What the AdaIN optimisation reproduces: the inferred stages (the artwork itself last). None until
        # an artwork is loaded; then refine() falls back to the current stages.
        self.targets: list[torch.Tensor] | None = None
        # Content code of each transition's last input (and the decoder's start on it, AdaINGenerator.decode_start),
        # keyed by an exact copy of that input: a latent or delta change (a slider drag) re-decodes without
        # re-encoding, and any change of the input misses the cache.
        self._content_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    # ----- facts -----
    @property
    def num_stages(self) -> int:
        return self.config.num_stages

    @property
    def stage_names(self) -> list[str]:
        return self.config.stage_names

    @property
    def perceptual_kind(self) -> PerceptualKind:
        return PerceptualKind.VGG16 if self._vgg is not None else PerceptualKind.DISCRIMINATOR

    def _check_stage_image(self, k: int, image: torch.Tensor) -> torch.Tensor:
        if not 0 <= k < self.num_stages:
            raise ArtflowError(f"stage index {k} is out of range (this model has {self.num_stages} stages)")
        spec = self.config.stages[k]
        res = self.config.resolution
        if image.dim() == 4 and image.shape[0] == 1:
            image = image[0]
        if tuple(image.shape) != (spec.channels, res, res):
            raise ArtflowError(f"stage '{spec.name}' takes a {spec.channels}x{res}x{res} image, "
                               f"got {'x'.join(map(str, image.shape))}")
        return image.detach().float().cpu().clamp(-1, 1)

    # ----- snapshots -----
    def snapshot(self) -> SessionState:
        return SessionState(tuple(b.clone() for b in self.bases),
                            tuple(None if ly is None else (ly[0].clone(), ly[1].clone()) for ly in self.layers),
                            tuple(z.clone() for z in self.latents), tuple(d.clone() for d in self.deltas),
                            tuple(t.clone() for t in self.targets) if self.targets is not None else None)

    def restore(self, state: SessionState) -> None:
        """Replace the session's state with `state`; on an ArtflowError the session is left unchanged."""
        n = self.num_stages
        if (len(state.bases) != n or len(state.layers) != n or len(state.latents) != n - 1
                or len(state.deltas) != n - 1 or (state.targets is not None and len(state.targets) != n)):
            raise ArtflowError("the saved state has a different number of stages than this model")
        bases = [self._check_stage_image(k, s) for k, s in enumerate(state.bases)]
        layers = [None if ly is None else self._check_layer(k, ly) for k, ly in enumerate(state.layers)]
        targets = ([self._check_stage_image(k, t) for k, t in enumerate(state.targets)]
                   if state.targets is not None else None)
        for i, (z, d) in enumerate(zip(state.latents, state.deltas)):
            if z.shape != self.latents[i].shape or d.shape != self.deltas[i].shape:
                raise ArtflowError(f"the saved latents of transition {i} do not fit this model")
        self.bases, self.layers, self.targets = bases, layers, targets
        self.stages = [compose(b, ly) for b, ly in zip(bases, layers)]
        self.latents = [z.detach().float().cpu().clone() for z in state.latents]
        self.deltas = [d.detach().float().cpu().clone() for d in state.deltas]

    def _check_layer(self, k: int, layer: Layer) -> Layer:
        colour, alpha = layer
        colour = self._check_stage_image(k, colour)
        res = self.config.resolution
        if alpha.dim() == 2:
            alpha = alpha[None]
        if tuple(alpha.shape) != (1, res, res):
            raise ArtflowError(f"a layer's alpha must be 1x{res}x{res}, got {'x'.join(map(str, alpha.shape))}")
        return colour, alpha.detach().float().cpu().clamp(0, 1)

    # ----- the generator chain -----
    def adain_params(self, i: int, latent: torch.Tensor | None = None) -> torch.Tensor:
        """AdaIN parameters of transition i: MLP(z) + delta, (P,) on the CPU."""
        z = (self.latents[i] if latent is None else latent).to(self.device).reshape(1, -1)
        with torch.no_grad():
            base = self.model.generators[i].adain_params(z)[0].cpu()
        return base + self.deltas[i]

    def content(self, i: int, source: torch.Tensor) -> torch.Tensor:
        """Content code of generator i for `source` (C, h, w), from the cache when `source` equals the last input
        of that transition at that size (compared exactly, so no edit can leave a stale code)."""
        return self._decoder_inputs(i, source)[0]

    def _decoder_inputs(self, i: int, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content code, decoder start) of generator i for `source`, cached as content() says."""
        key = (i, source.shape[-1])
        hit = self._content_cache.get(key)
        if hit is not None and hit[0].shape == source.shape and torch.equal(hit[0], source):
            return hit[1], hit[2]
        fast = self._fast[i]
        with torch.inference_mode():
            code = fast.encode_content(source.unsqueeze(0).to(self.device))
            start = fast.decode_start(code)
        self._content_cache[key] = (source.clone(), code, start)
        return code, start

    def generate(self, i: int, source: torch.Tensor | None = None, latent: torch.Tensor | None = None,
                 delta: torch.Tensor | None = None, cache: bool = True, halvings: int = 0) -> torch.Tensor:
        """Stage i+1 from `source` (default: the current stage i), without changing the session. cache=False
        recomputes the content code and the decoder's start (the uncached reference path). halvings: the picture
        at 2**-halvings of the size, decoded from the same content code (AdaINGenerator.decode)."""
        src = self.stages[i] if source is None else source
        g, fast = self.model.generators[i], self._fast[i]
        with torch.inference_mode():
            z = (self.latents[i] if latent is None else latent).to(self.device).reshape(1, -1)
            d = (self.deltas[i] if delta is None else delta).to(self.device).reshape(1, -1)
            params = g.adain_params(z) + d
            content, start = (self._decoder_inputs(i, src) if cache
                              else (fast.encode_content(src.unsqueeze(0).to(self.device)), None))
            out = fast.decode(content, params, halvings, start)
        # A normal (C, H, W) contiguous tensor: inference tensors refuse later in-place edits, and the decoder's
        # channels_last output would leave the stage strided.
        return out[0].float().cpu().clone(memory_format=torch.contiguous_format)

    def propagate(self, k: int, keep_mask: torch.Tensor | None = None, cache: bool = True,
                  until: int | None = None) -> list[int]:
        """Stage k changed: regenerate stages k+1 .. N-1 (or k+1 .. `until`) with the current latents. Stages <= k
        are not touched. keep_mask (H, W) in [0, 1]: where 0, later stages keep their previous pixels ("keep
        unedited areas"). Returns the indices of the regenerated stages. cache=False: no content code reuse
        (reference path)."""
        if not 0 <= k < self.num_stages:
            raise ArtflowError(f"stage index {k} is out of range (this model has {self.num_stages} stages)")
        if until is not None and not k < until < self.num_stages:
            raise ArtflowError(f"propagate from stage {k} until stage {until}: not a later stage of this model")
        last = self.num_stages - 1 if until is None else until
        self._adapt_threads()
        changed = []
        for i in range(k, last):
            new = self.generate(i, cache=cache)
            if keep_mask is not None:
                m = keep_mask.to(new.dtype)[None]
                new = m * new + (1 - m) * self.bases[i + 1]
            self.bases[i + 1] = new
            self.stages[i + 1] = compose(new, self.layers[i + 1])
            changed.append(i + 1)
        return changed

    def preview(self, k: int, size: int | None = None, latent: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Stages k+1 .. N-1 as propagate(k) would make them now (with `latent` as transition k's code when
        given), but at size x size (default: half the resolution), without changing the session: the live picture
        while a slider is dragged, the full propagate on release. size is the resolution divided by a power of
        two, at most 2**n_down. Transition k decodes its input's full-size content code (cached: a latent drag
        never re-encodes it) without its last upsamplings, a close likeness of the full picture downsized; the
        later transitions run on the smaller picture (the generators are fully convolutional; the artist's
        layers are resized the same way) at a quarter of the cost."""
        first, later = self.preview_split(k, size, latent)
        return [] if first is None else [first, *later(first)]

    def preview_split(self, k: int, size: int | None = None,
                      latent: torch.Tensor | None = None) -> tuple[torch.Tensor | None, LaterPreview]:
        """preview() in two parts: stage k+1's preview, computed now, and the later stages' as a LaterPreview to
        call with it (on another thread if need be: the app overlaps one value's later stages with the next
        value's first, using a second core). (None, an empty LaterPreview) for the last stage."""
        if not 0 <= k < self.num_stages:
            raise ArtflowError(f"stage index {k} is out of range (this model has {self.num_stages} stages)")
        res, n_down = self.config.resolution, self.config.generator.n_down
        size = res // 2 if size is None else size
        sizes = {res >> h: h for h in range(n_down + 1) if res >> h >= 8}
        if size not in sizes:
            raise ArtflowError(f"a preview size must be one of {', '.join(map(str, sorted(sizes)))} "
                               f"(the resolution {res} halved up to {n_down} times), got {size}")
        if latent is not None:
            latent = self._checked_latent(k, latent)
        if k == self.num_stages - 1:
            return None, LaterPreview((), (), (), self.device)
        first = self._with_layer(self.generate(k, latent=latent, halvings=sizes[size]), k + 1, size)
        later = range(k + 1, self.num_stages - 1)
        with torch.inference_mode():  # a new input on every move: the later content codes are never reused
            params = tuple(self.model.generators[i].adain_params(self.latents[i].to(self.device).reshape(1, -1))
                           + self.deltas[i].to(self.device).reshape(1, -1) for i in later)
        layers = tuple(self._layer_at(i + 1, size) for i in later)
        return first, LaterPreview(tuple(self._fast[i] for i in later), params, layers, self.device)

    def _layer_at(self, k: int, size: int) -> Layer | None:
        layer = self.layers[k]
        return None if layer is None else (_resize(layer[0], size), _resize(layer[1], size))

    def _with_layer(self, base: torch.Tensor, k: int, size: int) -> torch.Tensor:
        return compose(base, self._layer_at(k, size))

    def set_stage(self, k: int, image: torch.Tensor, propagate: bool = True,
                  keep_mask: torch.Tensor | None = None) -> list[int]:
        """Replace stage k's base image (its artist layer, if any, stays on top) and regenerate later stages."""
        self.bases[k] = self._check_stage_image(k, image)
        self.stages[k] = compose(self.bases[k], self.layers[k])
        return self.propagate(k, keep_mask) if propagate else []

    def set_layer(self, k: int, layer: Layer | None, propagate: bool = True,
                  keep_mask: torch.Tensor | None = None) -> list[int]:
        """Set (or clear, with None) the artist's layer over stage k, then regenerate later stages."""
        self.layers[k] = None if layer is None else self._check_layer(k, layer)
        self.stages[k] = compose(self.bases[k], self.layers[k])
        return self.propagate(k, keep_mask) if propagate else []

    def start_from(self, first_stage: torch.Tensor) -> None:
        """A new artwork from a first-stage drawing: latents at the prior's mean, no deltas, chain generated."""
        self.targets = None
        self.layers = [None] * self.num_stages  # a new artwork: no paint of the previous one over it
        self.latents = self._prior_means()
        self.deltas = [torch.zeros_like(d) for d in self.deltas]
        self.set_stage(0, first_stage)

    def _prior_means(self) -> list[torch.Tensor]:
        return [p.mean.detach().float().cpu().clone() for p in self.model.latent_priors]

    # ----- latents -----
    def _checked_latent(self, i: int, z: torch.Tensor) -> torch.Tensor:
        """z as transition i's code (z_dim,) float32, or a clear error for a wrong transition or size."""
        if not 0 <= i < self.num_stages - 1:
            raise ArtflowError(f"transition index {i} is out of range")
        z = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
        if z.shape != self.latents[i].shape:
            raise ArtflowError(f"a latent code has {self.latents[i].numel()} values, got {z.numel()}")
        return z

    def set_latent(self, i: int, z: torch.Tensor, propagate: bool = True) -> list[int]:
        self.latents[i] = self._checked_latent(i, z).clone()
        return self.propagate(i) if propagate else []

    def sample_latent(self, i: int, seed: int | None = None, propagate: bool = True) -> torch.Tensor:
        """Draw z from the model's latent prior (within Z_RANGE of its standard deviations); a seed makes it
        repeatable."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = self.model.sample_latents(i, 1, gen, clip=Z_RANGE)[0].float().cpu()
        self.set_latent(i, z, propagate=propagate)
        return z

    # ----- editing an existing artwork -----
    def infer_stages(self, artwork: torch.Tensor) -> list[torch.Tensor]:
        """Workflow inference: the finished artwork (C_last, H, W) -> every stage. They become the session's stages
        and the refinement targets."""
        art = self._check_stage_image(self.num_stages - 1, artwork)
        chain = self.model.infer_chain(art.unsqueeze(0).to(self.device))
        inferred = [s[0].float().cpu().clamp(-1, 1) for s in chain[:-1]] + [art]
        self.bases = [s.clone() for s in inferred]
        self.layers = [None] * self.num_stages
        self.stages = [s.clone() for s in inferred]
        self.targets = [s.clone() for s in inferred]
        return inferred

    @torch.no_grad()
    def encode(self, propagate: bool = True) -> None:
        """Initial latents from the encoders E_i applied to stage i+1 (the mean of q(z | x)); deltas reset."""
        images = self.targets if self.targets is not None else self.stages
        for i in range(self.num_stages - 1):
            mu, _ = self.model.encoders[i](images[i + 1].unsqueeze(0).to(self.device))
            self.latents[i] = mu[0].float().cpu()
            self.deltas[i] = torch.zeros_like(self.deltas[i])
        if propagate:
            self.propagate(0)

    def load_artwork(self, artwork: torch.Tensor) -> None:
        """infer_stages + encode: the encoder-only reconstruction (stages 1.. generated from the inferred stage 0)."""
        self.infer_stages(artwork)
        self.encode(propagate=True)

    def perceptual(self, i: int) -> Perceptual:
        if i not in self._perceptual:
            self._perceptual[i] = make_perceptual(self.model.discriminators[i], self._vgg)
        return self._perceptual[i]

    def refine(self, steps: int | None = None, regularizer: Regularizer | str = Regularizer.LEARNED,
               lr: float | None = None,
               lambda_p: float = LAMBDA_P, preview_every: int = 10,
               should_stop: Callable[[], bool] | None = None,
               schedule: str | Schedule = DEFAULT_SCHEDULE) -> Generator[RefineStep, None, RefineReport]:
        """The AdaIN optimisation, transition by transition from the first to the last. Transition i starts from
        stage i as now generated (stage 0: the inferred first stage) and reproduces target i+1. Yields RefineStep;
        returns a RefineReport. The session changes only when all transitions complete: a cancel leaves it as it
        was. schedule: "exact" (the paper's 150 steps of 0.1) or "fast" (core.editing.refine.SCHEDULES); steps and lr,
        when given, override the schedule's."""
        plan = schedule_named(schedule)
        steps = plan.steps if steps is None else steps
        lr = plan.lr if lr is None else lr
        if regularizer not in REGULARIZERS:
            raise ArtflowError(f"unknown regularizer {regularizer!r}; choose one of {', '.join(REGULARIZERS)}")
        regularizer = Regularizer(regularizer)
        targets = self.targets if self.targets is not None else [s.clone() for s in self.stages]
        t0 = time.perf_counter()
        stages = [s.clone() for s in self.stages]
        bases = [b.clone() for b in self.bases]
        deltas = [d.clone() for d in self.deltas]
        reports = []
        completed = True
        for i in range(self.num_stages - 1):
            g = self.model.generators[i]
            with torch.no_grad():
                base = g.adain_params(self.latents[i].to(self.device).reshape(1, -1))[0]
            w = self.model.reg_weights[i] if regularizer is Regularizer.LEARNED else None
            result: TransitionResult = yield from self._governed(refine_transition(
                g, self.perceptual(i), stages[i], targets[i + 1], base, deltas[i], w, transition=i, steps=steps,
                lr=lr, lambda_p=lambda_p, preview_every=preview_every, should_stop=should_stop, lr_end=plan.lr_end,
                coarse_steps=plan.coarse_steps, stop_window=plan.stop_window, stop_tol=plan.stop_tol))
            if not result.completed:
                completed = False
                break
            deltas[i] = result.delta
            bases[i + 1] = result.output.clamp(-1, 1)
            stages[i + 1] = compose(bases[i + 1], self.layers[i + 1])
            reports.append(TransitionReport(i, result.loss_start, result.loss_end, result.seconds))
        if completed:
            self.bases, self.stages, self.deltas = bases, stages, deltas
        trained = tuple(self.model.regularizer_trained(i) for i in range(self.num_stages - 1))
        return RefineReport(tuple(reports), regularizer, trained, self.perceptual_kind, completed,
                            time.perf_counter() - t0, {"schedule": plan.name})

    def _adapt_threads(self) -> None:
        if self.governor is not None:
            self.governor.apply()

    def _governed(self, steps: Generator[RefineStep, None, TransitionResult]
                  ) -> Generator[RefineStep, None, TransitionResult]:
        """`steps` with the thread count re-judged before each step (a busy neighbour may come or go mid-way)."""
        try:
            while True:
                self._adapt_threads()
                try:
                    step = next(steps)
                except StopIteration as done:
                    return done.value
                yield step
        finally:
            steps.close()  # a cancel (close) reaches the refinement as `yield from` would pass it


def _resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size), area-averaged (an exact copy at the same size)."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return F.interpolate(image[None], size=(size, size), mode="area")[0]


def run_to_end(gen: Generator[RefineStep, None, RefineReport],
               on_step: Callable[[RefineStep], None] | None = None) -> RefineReport:
    """Drive a refine() generator to its end (for scripts and tests) and return its report."""
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(step)
