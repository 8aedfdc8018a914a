"""What the engine thread runs for each request: one function per request type, on the thread's state.

Each handler takes the engine's state as `EngineState` (the session, the artwork at its own size, and the idle
work queue) and returns the request's answer; the thread itself (its queue, merging, dispatch table, idle work and
the preview tail) is app/engine_worker.py's. Handlers run on the engine thread only: they are the code that touches
the session. A preview's hand-over to the tail thread and a refinement's cancel and progress come in as callbacks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from app.engine_requests import (
    ApplyEdits,
    EngineResult,
    LoadArtwork,
    LoadModel,
    ModelInfo,
    NewArtwork,
    OpenLineArt,
    OpenProject,
    PreviewLatent,
    Refine,
    RefineProgress,
    Regenerate,
    Request,
    SampleLatent,
    SaveProject,
)
from core.editing.session import run_to_end
from core.fullres import kernels
from core.fullres.artwork import LayeredArtwork, to_u8
from core.fullres.kinds import stage_kinds
from core.fullres.pipeline import line_before

if TYPE_CHECKING:
    from core.editing.session import Session


class EngineState(Protocol):
    """What the handlers use of the engine thread (app/engine_worker.EngineThread): a protocol, so that this module
    does not import the thread that runs it."""

    session: Session | None  # None until a model is loaded (only LoadModel runs then)
    art: LayeredArtwork | None  # the artwork at its own size, kept in step with the session

    def set_idle_work(self, *work: Callable[[], None]) -> None: ...


def result(engine: EngineState, rid: int, req: Request, changed=(), info: dict | None = None) -> EngineResult:
    """The answer to `req`: snapshots of the session and the artwork after it, `changed` the regenerated stages."""
    return EngineResult(rid, req, engine.session.snapshot(), tuple(sorted(set(changed))), info or {},
                        engine.art.snapshot())


def use_artwork(engine: EngineState, art: LayeredArtwork, prime: bool = True) -> None:
    """`art` becomes the engine's artwork; with `prime`, its line arts' regions are found as idle work."""
    engine.art = art
    if prime:
        engine.set_idle_work(prime_regions(engine, art))


def prime_regions(engine: EngineState, art: LayeredArtwork) -> Callable[[], None]:
    """Idle work: the closed regions of each line art a clean flat is made from, found for the artwork just
    opened, so that the artist's first stroke on the line art only updates them around the stroke (found from
    scratch they take ~1 s at 2048 x 1536, ~4 s at 4096 x 3072)."""

    def prime() -> None:
        if engine.art is not art or engine.session is None:
            return  # another artwork since
        kinds = stage_kinds(engine.session.config.stages)
        for k in range(len(kinds)):
            line = line_before(kinds, k)
            if line is not None:
                art.regions(line)

    return prime


# ----- the model -----
def load_model(engine: EngineState, rid: int, req: LoadModel) -> EngineResult:
    from core.editing.session import Session
    from core.files import bundle
    from core.platform.device import device_label, resolve_device

    device = resolve_device(req.device)
    model = bundle.load(req.path)  # BundleError leaves the current session in place: nothing is lost
    session = Session(model, device=device, adapt_threads=True)
    res = session.config.resolution
    session.start_from(torch.ones(session.config.stages[0].channels, res, res))
    engine.session = session
    engine.art = LayeredArtwork.of_session(session)
    # Once per process, beside the app: the full-resolution passes compiled (a fresh machine: ~20 s on 2 cores)
    # or loaded from numba's disk cache, before the artist's first full-size artwork needs them.
    kernels.warm_up_in_background()
    priors = tuple(copy.deepcopy(p).cpu() for p in session.model.latent_priors)
    info = ModelInfo(str(req.path), session.config, device_label(session.device), session.perceptual_kind,
                     priors)
    return result(engine, rid, req, range(session.num_stages), {"model": info})


# ----- artworks: new, opened, line art -----
def new_artwork(engine: EngineState, rid: int, req: NewArtwork) -> EngineResult:
    from core.fullres.pipeline import generate_fullres
    from core.fullres.proxy import check_artwork_size

    s = engine.session
    for k in range(s.num_stages):
        s.set_layer(k, None, propagate=False)
    res = s.config.resolution
    width, height = req.width or res, req.height or res
    if (width, height) == (res, res):  # the model's own size: the session's stages are the artwork
        s.start_from(torch.ones(s.config.stages[0].channels, res, res))
        engine.art = LayeredArtwork.of_session(s)
    else:  # the artist's size (issue 28): the chain generated at that size, like `artflow generate`
        check_artwork_size(width, height, "new drawing")
        # In 8 bits, as the artwork holds them (the same pixels as the float stages rounded: no float copies).
        pm, full = generate_fullres(s, torch.ones(s.config.stages[0].channels, height, width), req.clean_flats,
                                    u8=True)
        use_artwork(engine, LayeredArtwork.from_stages(pm, full), prime=req.clean_flats)
    return result(engine, rid, req, range(1, s.num_stages))


def open_line_art(engine: EngineState, rid: int, req: OpenLineArt) -> EngineResult:
    from core.fullres.lineart_import import read_line_art
    from core.fullres.pipeline import generate_fullres
    from core.fullres.proxy import MIN_SIDE

    s = engine.session
    # Read as `artflow generate` reads a line art (grey, a dithered drawing's dots smoothed, a scan cleaned up).
    read = read_line_art(req.path, min(MIN_SIDE, s.config.resolution), cleanup=req.cleanup)
    grey, info = read.image, read.cleanup
    first = grey if s.config.stages[0].channels == 1 else np.repeat(grey[..., None], 3, axis=2)
    for k in range(s.num_stages):
        s.set_layer(k, None, propagate=False)
    pm, full = generate_fullres(s, first, req.clean_flats, u8=True)  # in 8 bits, as the artwork holds them
    use_artwork(engine, LayeredArtwork.from_stages(pm, full), prime=req.clean_flats)
    return result(engine, rid, req, range(s.num_stages), {"lineart": None if info is None else info.as_dict()})


def load_artwork(engine: EngineState, rid: int, req: LoadArtwork) -> EngineResult:
    from core.files.imageio import load_artwork as read_artwork
    from core.fullres.pipeline import fullres_stages
    from core.fullres.proxy import MIN_SIDE, to_proxy

    s = engine.session
    last, res = s.config.stages[-1], s.config.resolution
    image = req.image if req.image is not None else read_artwork(req.path, last.channels, min(MIN_SIDE, res))
    proxy, pm = to_proxy(image, res)
    s.load_artwork(proxy)
    # At every size, the model's own included, the artwork keeps its pixels apart from the session's fit
    # (issue 27): with no edit it comes back exactly.
    full = fullres_stages(s, pm, {s.num_stages - 1: image}, req.clean_flats)
    use_artwork(engine, LayeredArtwork.from_stages(pm, full, target=image), prime=req.clean_flats)
    return result(engine, rid, req, range(s.num_stages))


# ----- edits and latents -----
def apply_edits(engine: EngineState, rid: int, req: ApplyEdits) -> EngineResult:
    s = engine.session
    # A latent change restyles the whole picture; a painted edit follows req.propagation.
    propagation = "global" if req.latents else req.propagation
    proxy_mask, full_mask = engine.art.set_layers(s, req.layers, req.keep_unedited,
                                                  full_mask=propagation != "regions")
    for i in sorted(req.latents):
        s.set_latent(i, req.latents[i], propagate=False)
    first = req.first_stage()
    # A latent change restyles the whole picture: "keep unedited areas" applies to painted edits only.
    if req.latents:
        proxy_mask = full_mask = None
    if first is None:
        return result(engine, rid, req)
    changed = engine.art.regenerate(s, first, full_mask, proxy_mask, req.clean_flats, propagation=propagation)
    return result(engine, rid, req, changed)


def regenerate(engine: EngineState, rid: int, req: Regenerate) -> EngineResult:
    s = engine.session
    changed = engine.art.regenerate(s, req.stage, clean_flats=req.clean_flats)
    return result(engine, rid, req, changed)


def sample_latent(engine: EngineState, rid: int, req: SampleLatent) -> EngineResult:
    s = engine.session
    s.sample_latent(req.transition, seed=req.seed, propagate=False)
    changed = engine.art.regenerate(s, req.transition, clean_flats=req.clean_flats)
    return result(engine, rid, req, changed)


def preview_latent(engine: EngineState, rid: int, req: PreviewLatent, preview_threads: int, pipelined: bool,
                   hand_over: Callable[[int, Callable[[], EngineResult]], None]) -> EngineResult | None:
    """A slider's pictures on at most `preview_threads` torch threads. Pipelined (and more than one stage after
    the transition), stage transition+1 is made here, the later ones are handed over with hand_over(tail's torch
    threads, finish), finish() runs on the tail thread and is the answer, and None is returned."""
    from core.fullres.proxy import ProxyMap, preview_to_u8

    s, art = engine.session, engine.art
    res = s.config.resolution
    pm = art.pm if art is not None else ProxyMap(res, res, res)
    changed = tuple(range(req.transition + 1, s.num_stages))
    n = torch.get_num_threads()
    threads = max(1, min(n, preview_threads))
    pipelined = pipelined and len(changed) > 1
    tail_threads = max(1, threads // 2)
    if pipelined:  # the cores are shared with the tail thread
        threads = max(1, threads - tail_threads)
    torch.set_num_threads(threads)
    try:
        # The quick proxy pictures at the artwork's size, as the document shows stages (enlarged in 8 bits:
        # a float enlargement to a 2048 px artwork took longer than the preview itself).
        first, later = s.preview_split(req.transition, latent=req.z)
        shown = preview_to_u8(first, pm)
        if not pipelined:
            pictures = (shown, *(preview_to_u8(p, pm) for p in later(first)))
            return EngineResult(rid, req, None, changed, {"previews": pictures})
    finally:
        torch.set_num_threads(n)

    def finish() -> EngineResult:  # on the tail thread
        pictures = (shown, *(preview_to_u8(p, pm) for p in later(first)))
        return EngineResult(rid, req, None, changed, {"previews": pictures})

    hand_over(tail_threads, finish)
    return None


# ----- refinement -----
def refine(engine: EngineState, rid: int, req: Refine, should_stop: Callable[[], bool],
           progress: Callable[[RefineProgress], None]) -> EngineResult:
    """The session's refinement, each step's report sent to `progress`; `should_stop` is Cancel."""
    from core.fullres.pipeline import cleans_after_refinement
    from core.fullres.proxy import from_proxy

    s, art = engine.session, engine.art
    n_t = s.num_stages - 1
    old = [b.clone() for b in s.bases]
    gen = s.refine(steps=req.steps, preview_every=req.preview_every, should_stop=should_stop,
                   schedule=req.schedule)
    t0 = time.perf_counter()

    def full_preview(p: torch.Tensor | None):
        if p is None:
            return None
        return to_u8(p if art.identity else from_proxy(p, art.pm, "bilinear"))

    report = run_to_end(gen, lambda step: progress(RefineProgress(
        rid, step.transition, n_t, step.step, step.steps, step.loss, step.preview, full_preview(step.preview))))
    info = {"report": report, "cancelled": not report.completed, "seconds": time.perf_counter() - t0}
    changed = ()
    if report.completed:
        changed = tuple(range(1, s.num_stages))
        art.follow(s, old, 0, clean_flats=cleans_after_refinement(art.pm, req.clean_flats))
        art.pin_target()
    return result(engine, rid, req, changed, info)


# ----- projects: saving and opening -----
def save_project(engine: EngineState, rid: int, req: SaveProject) -> EngineResult:
    from core.files.project import project_from_session
    from core.files.project import save_project as write_project

    art = engine.art
    if art.identity:
        project = project_from_session(engine.session, req.extra)
    else:
        # The 8-bit images themselves (the bases shared, the stages as seen composited): no float copies.
        n = art.num_stages
        project = project_from_session(engine.session, req.extra, [art.stage(k) for k in range(n)],
                                       list(art.layers), list(art.bases))
    path = write_project(project, req.path)
    return EngineResult(rid, req, None, (), {"path": str(path)})


def open_project(engine: EngineState, rid: int, req: OpenProject) -> EngineResult:
    from core.files.imageio import uint8_to_tensor
    from core.files.project import apply_project, load_project
    from core.fullres.proxy import proxy_with

    s = engine.session
    project = load_project(req.path, config=s.config)
    if project.read_only:
        return EngineResult(rid, req, None, (), {"project": project, "applied": False})
    apply_project(s, project)
    if project.fullres_u8 is None:
        engine.art = LayeredArtwork.of_session(s)
    else:
        pm = project.proxy_map()
        layers = project.fullres_layers or [None] * s.num_stages
        # The project's 8-bit images become the artwork's (shared, read-only): no float copies.
        bases = [project.fullres_bases_u8[k] if layers[k] is not None else project.fullres_u8[k]
                 for k in range(s.num_stages)]
        for k in range(s.num_stages):
            if layers[k] is None and s.layers[k] is not None:
                # A layer only at the proxy's size (a project edited elsewhere): the full-res stage as seen
                # holds it already; it becomes the base.
                s.set_layer(k, None, propagate=False)
                s.set_stage(k, proxy_with(uint8_to_tensor(project.fullres_u8[k]), pm), propagate=False)
        use_artwork(engine, LayeredArtwork(pm, bases, layers))
    return result(engine, rid, req, range(s.num_stages), {"project": project, "applied": True})
