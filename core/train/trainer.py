"""The training loop: phases in order, checkpoints that resume exactly, logs and sample grids, bundle export.

Single process: `artflow train ...`. Several: `torchrun --nproc_per_node=K main.py train ...` (DDP; NCCL on GPUs,
gloo on CPU). Rank 0 writes logs, samples, checkpoints and the bundle; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from core.config import WorkflowConfig
from core.errors import ArtflowError, CancelledError
from core.files import bundle
from core.model import REGULARIZER_INIT, WorkflowModel, make_encoders
from core.nn.perceptual import make_perceptual
from core.platform.device import resolve_device
from core.platform.threads import ThreadGovernor
from core.train.checkpoint import CHECKPOINT, read_checkpoint, refuse_legacy_checkpoint, write_checkpoint
from core.train.config import PHASES, TrainConfig
from core.train.data import StageBank, batch_indices, step_generator
from core.train.latent_prior_fit import fit_model_latent_priors
from core.train.phases import (
    DiscriminatorStep,
    GenerationStep,
    InferenceStep,
    RegularizerStep,
    make_inference_discriminators,
)
from core.train.samples import sample_grid


class Trainer:
    def __init__(self, model_config: WorkflowConfig, train_config: TrainConfig, data: StageBank, out_dir: str | Path,
                 device: str = "auto", init_bundle: str | Path | None = None, progress: bool = True,
                 reset_encoders: bool = False, adapt_threads: bool = False, reset_regularizer: bool = False) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(local)
            dist.init_process_group(backend)
        self.device = torch.device("cuda", local) if (self.world > 1 and dist.get_backend() == "nccl") \
            else resolve_device(device)
        self.mcfg, self.cfg, self.data = model_config, train_config, data
        # adapt_threads: on a CPU, each iteration uses the cores other programs leave free (core/platform/threads.py): a
        # thread team waiting on a busy core stalls every operation. One process only (DDP ranks keep theirs).
        self.governor = ThreadGovernor() if adapt_threads and self.device.type == "cpu" and self.world == 1 else None
        self.out = Path(out_dir)
        self.progress = progress and self.is_main
        torch.manual_seed(train_config.seed)  # identical initial weights on every rank
        # channels_last: the strided 4x4 convs of the discriminators run ~10x faster backward on CPU (measured).
        model = bundle.load(init_bundle) if init_bundle else WorkflowModel(model_config)
        if reset_encoders:
            # Fresh latent encoders on top of trained generators: the way out of a posterior collapse (an E that
            # encodes nothing), which more training of the same E does not undo.
            model.encoders = make_encoders(model.config)
        if reset_regularizer:
            # Algorithm 1 from its start (w = 0.001) on trained generators, e.g. with another --reg-lambda-gan.
            with torch.no_grad():
                for w in model.reg_weights:
                    w.fill_(REGULARIZER_INIT)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.model.requires_grad_(True).train()
        self.inf_discs = make_inference_discriminators(self.model).to(self.device, memory_format=torch.channels_last)
        m = self.model
        self.optims: dict[str, torch.optim.Optimizer] = {
            "inference_g": self._adam(m.inference.parameters()),
            "inference_d": self._adam(self.inf_discs.parameters(), train_config.lr_d),
            "generation_g": self._adam(list(m.generators.parameters()) + list(m.encoders.parameters())),
            "generation_d": self._adam(m.discriminators.parameters(), train_config.lr_d),
        }
        for i, w in enumerate(m.reg_weights):
            self.optims[f"regularizer_{i}"] = torch.optim.Adam([w], lr=train_config.reg_lr)
        self.phase_done: dict[str, int] = {p: 0 for p in PHASES}  # steps completed per phase
        self.history: list[dict] = []
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self._writer = None
        self.resumed = self._resume()

    # ----- helpers -----
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _adam(self, params, lr: float | None = None) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr or self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2))

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    def _autocast(self):
        enabled = self.cfg.amp and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    def batch(self, phase: str, step: int, batch: int | None = None) -> list[torch.Tensor]:
        """The training batch of `phase` at `step` (seeded by both, so a resumed run sees the same data)."""
        b = batch or self.cfg.batch_size
        idx = batch_indices(len(self.data), b, self.cfg.seed, phase, step, self.rank, self.world)
        gen = step_generator(self.cfg.seed + 1 + self.rank, phase, step)
        # Hand-drawn line art only where stage 0 is an input: as workflow inference's target it would teach the
        # U-Net to predict a blur of random wobbles.
        hand_drawn = 0.0 if phase.startswith("inference") else self.cfg.hand_drawn
        return self.data.batch(idx, gen, self.cfg.augment, self.device, recolour=self.cfg.recolour,
                               hand_drawn=hand_drawn)

    # ----- checkpoints -----
    def _rng_state(self) -> dict:
        np_state = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                 "python_pos": random.getstate()[2] if random.getstate()[2] is not None else -1,
                 "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2])}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _set_rng_state(self, s: dict) -> None:
        torch.set_rng_state(s["torch"])
        random.setstate((3, tuple(s["python"]), None if s["python_pos"] == -1 else s["python_pos"]))
        np.random.set_state(("MT19937", s["numpy"].numpy().astype(np.uint32), s["numpy_pos"], 0, 0.0))
        if "cuda" in s and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda"])

    def save_checkpoint(self) -> None:
        if not self.is_main:
            return
        state = {"model": self.model.state_dict(), "inf_discs": self.inf_discs.state_dict(),
                 "optims": {k: o.state_dict() for k, o in self.optims.items()},
                 "phase_done": dict(self.phase_done), "rng": self._rng_state(),
                 "model_config": self.mcfg.to_json(), "train_config": self.cfg.to_json()}
        write_checkpoint(state, self.out / CHECKPOINT)

    def _resume(self) -> bool:
        refuse_legacy_checkpoint(self.out)
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        state = read_checkpoint(path)
        if state.get("model_config") != self.mcfg.to_json():
            raise ArtflowError(f"{path}: the checkpoint was made with another model configuration; "
                               "use another --out folder or the same settings")
        self.model.load_state_dict(state["model"])
        self.inf_discs.load_state_dict(state["inf_discs"])
        for k, o in self.optims.items():
            o.load_state_dict(state["optims"][k])
        self.phase_done.update(state["phase_done"])
        self._set_rng_state(state["rng"])
        return True

    # ----- logging -----
    def _log(self, phase: str, step: int, logs: dict, sec_per_it: float) -> None:
        if not self.is_main:
            return
        rec = {"phase": phase, "step": step, "sec_per_it": round(sec_per_it, 4), **{k: round(v, 5) for k, v in
                                                                                     logs.items()}}
        self.history.append(rec)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._writer = SummaryWriter(str(self.out / "tensorboard"))
            except Exception:  # TensorBoard not installed: the jsonl log is enough
                self._writer = False
        if self._writer:
            for k, v in logs.items():
                self._writer.add_scalar(f"{phase}/{k}", v, step)

    @torch.no_grad()
    def _samples(self, phase: str, step: int) -> None:
        if not self.is_main:
            return
        self.model.eval()
        try:
            stages = self.data.batch(torch.arange(min(4, len(self.data))), None, False, self.device)
            sample_grid(self.model, stages, self.out / "samples" / f"{phase}-{step:07d}.png")
        finally:
            self.model.train()

    # ----- the loop -----
    def run(self, phases: tuple[str, ...] = PHASES, max_minutes: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> Path | None:
        """Train the given phases in order, resuming where the checkpoint left off. Returns the exported bundle
        path when every phase finished, None when stopped early by max_minutes (a checkpoint is saved)."""
        t_start = time.monotonic()
        self._last_ckpt = time.monotonic()
        deadline = t_start + max_minutes * 60 if max_minutes else None
        try:
            for phase in phases:
                total = self.cfg.iters.get(phase, 0) * (self.mcfg.num_transitions if phase == "regularizer" else 1)
                if self.phase_done[phase] >= total:
                    continue
                finished = self._run_phase(phase, total, deadline, should_stop)
                self.save_checkpoint()
                if not finished:
                    return None
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise CancelledError(
                f"training interrupted; resume with the same command (checkpoint in {self.out})") from None
        return self.export()

    def _run_phase(self, phase: str, total: int, deadline: float | None,
                   should_stop: Callable[[], bool] | None) -> bool:
        start = self.phase_done[phase]
        bar = tqdm(total=total, initial=start, desc=phase, disable=not self.progress, dynamic_ncols=True)
        t_last, n_last = time.monotonic(), 0
        step_fn = self._regularizer_step if phase == "regularizer" else self._gan_step
        for step in range(start, total):
            if (deadline and time.monotonic() > deadline) or (should_stop and should_stop()):
                bar.close()
                return False
            if self.governor is not None:
                self.governor.apply()
            logs = step_fn(phase, step)
            self.phase_done[phase] = step + 1
            n_last += 1
            bar.update(1)
            if (step + 1) % self.cfg.log_every == 0 or step + 1 == total:
                now = time.monotonic()
                self._log(phase, step + 1, logs, (now - t_last) / n_last)
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(logs.items())[:3]})
                t_last, n_last = now, 0
            if self.cfg.sample_every and ((step + 1) % self.cfg.sample_every == 0 or step + 1 == total):
                self._samples(phase, step + 1)
            if time.monotonic() - self._last_ckpt > self.cfg.checkpoint_minutes * 60:
                self.save_checkpoint()
                self._last_ckpt = time.monotonic()
        bar.close()
        return True

    def _gan_step(self, phase: str, step: int) -> dict:
        joint = phase.endswith("-joint")
        stages = self.batch(phase, step)
        m = self.model
        if phase.startswith("inference"):
            g_mod = getattr(self, "_inf_step", None) or self._make("_inf_step", InferenceStep(m, self.inf_discs,
                                                                                              self.cfg))
            d_mod = getattr(self, "_inf_dstep", None) or self._make("_inf_dstep", DiscriminatorStep(self.inf_discs))
            discs, opt_g, opt_d = self.inf_discs, self.optims["inference_g"], self.optims["inference_d"]
            real_index = {i: stages[i] for i in range(len(stages) - 1)}
        else:
            g_mod = getattr(self, "_gen_step", None) or self._make("_gen_step", GenerationStep(m, self.cfg))
            d_mod = getattr(self, "_gen_dstep", None) or self._make("_gen_dstep", DiscriminatorStep(m.discriminators))
            discs, opt_g, opt_d = m.discriminators, self.optims["generation_g"], self.optims["generation_d"]
            real_index = {i: stages[i + 1] for i in range(len(stages) - 1)}
            m.inference.requires_grad_(False)
        discs.requires_grad_(False)
        with self._autocast():
            loss, logs, fakes = g_mod(stages, joint)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        discs.requires_grad_(True)
        with self._autocast():
            d_loss = d_mod(real_index, [(i, f.detach()) for i, f in fakes])
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        logs["d_loss"] = float(d_loss.detach())
        return logs

    def _regularizer_step(self, phase: str, step: int) -> dict:
        per = self.cfg.iters["regularizer"]
        i = step // per
        m = self.model
        m.requires_grad_(False)
        m.reg_weights[i].requires_grad_(True)
        key = f"_reg_step_{i}"
        if not hasattr(self, key):
            perceptual = make_perceptual(m.discriminators[i], None)
            self._make(key, RegularizerStep(m, i, perceptual, self.cfg))
        mod = getattr(self, key)
        b = self.cfg.reg_batch_size
        stages = self.batch(phase, step, b)
        other = self.batch(phase + "-edit", step, b)  # x'_i: another drawing's stage i, an "edit" of the input
        warm = 0
        if self.cfg.reg_warm_max > 0:
            warm = int(torch.randint(self.cfg.reg_warm_max + 1, (1,), generator=step_generator(
                self.cfg.seed, phase + "-warm", step)))
        loss, logs = mod(stages[i], stages[i + 1], other[i], warm)
        opt = self.optims[f"regularizer_{i}"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            m.reg_weights[i].clamp_(min=0.0)
        logs["transition"] = float(i)
        return logs

    def _make(self, name: str, module: nn.Module) -> nn.Module:
        wrapped = self._wrap(module)
        setattr(self, name, wrapped)
        return wrapped

    # ----- export -----
    def fit_latent_priors(self) -> None:
        """Fit each transition's latent prior to the codes of the training artworks (core/train/latent_prior_fit.py)."""
        if len(self.data) < 2:
            return  # nothing to fit to: the prior stays as it is
        self.model.eval()
        try:
            fit_model_latent_priors(self.model, self.data, self.device)
        finally:
            self.model.train()

    def export(self, path: str | Path | None = None) -> Path:
        """Write the model bundle (fp16 weights) with freshly fitted latent priors. The regulariser counts as trained
        when its phase finished."""
        done = self.phase_done["regularizer"] >= self.cfg.iters.get("regularizer", 0) * self.mcfg.num_transitions \
            and self.cfg.iters.get("regularizer", 0) > 0
        cfg = self.mcfg.replace(regularizer_trained=tuple([done] * self.mcfg.num_transitions))
        self.fit_latent_priors()  # on every rank (each holds the whole data): the ranks' models stay identical
        export_model = WorkflowModel(cfg)
        export_model.load_state_dict(self.model.state_dict())
        target = Path(path) if path else self.out / "bundle"
        if self.is_main:
            bundle.save(export_model, target, half=True)
        if self.world > 1:
            dist.barrier()
        return target
