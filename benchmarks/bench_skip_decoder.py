"""Experiment (issue 15, item 4): do skip connections from the content encoder to the decoder learn the line art ->
flat transition faster and sharper than the MUNIT decoder, at the same (CPU) time budget?

    # one run per decoder, side by side, one thread each (the same share of the machine):
    python benchmarks/bench_skip_decoder.py train --decoder munit --data TRAIN_DIR --minutes 25 --out RUN_A &
    python benchmarks/bench_skip_decoder.py train --decoder skip  --data TRAIN_DIR --minutes 25 --out RUN_B &
    wait
    python benchmarks/bench_skip_decoder.py eval --data TEST_DIR RUN_A RUN_B

TRAIN_DIR / TEST_DIR: stage datasets with thin line art (0-lineart/, 1-flat/, ...), e.g. the train/ and test/
folders written by `artflow dataset fluent-emoji ... --line-art thin`. Only the first transition is trained: a
two-stage model (line art, flat) whose line art -> flat networks start from the bundled model's, fine-tuned with the
project's own generation phase (core/train/phases.py: BicycleGAN objectives, hand-drawn line-art augmentation on
half of the samples) for --minutes.

The "skip" decoder is the bundled generator plus additive skips: the content encoder's features at each of the
upsampler's resolutions, through a zero-initialised 1x1 convolution, added after that resolution's convolution.
At the start it computes exactly the bundled generator's function, so both runs start from the same pictures. The
skips depend on the input only, so a refinement computes them once (like the content code): each refinement step
costs two additions more. AdaIN still carries z and the refinement's delta.

`eval` measures, on the first --limit TEST drawings in the evaluation order of `artflow eval`, the flat made from the
true line art with the code the encoder gives the true flat: PSNR and L1 against the true flat, and sharpness (mean
gradient magnitude, generated / true: 1 is as crisp as the truth). The bundled model's own transition is measured
beside the runs. A script, not a test: it asserts nothing. Nothing here is shipped: a skip decoder in the bundle
would need the engine's fast inference path (core/nn/inference.py) and a full training run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402

from core.config import GeneratorConfig, WorkflowConfig  # noqa: E402
from core.evaluation.metrics import psnr_01  # noqa: E402
from core.files import bundle  # noqa: E402
from core.model import WorkflowModel  # noqa: E402
from core.nn.blocks import ConvBlock  # noqa: E402
from core.nn.generator import AdaINGenerator  # noqa: E402

DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"
DECODERS = ("munit", "skip")


class SkipGenerator(AdaINGenerator):
    """AdaINGenerator with additive encoder -> decoder skips (see the module's docstring). The content is a pair:
    (bottleneck code, the projected skip features by level, 0 = full size)."""

    def __init__(self, in_channels: int, out_channels: int, cfg: GeneratorConfig) -> None:
        super().__init__(in_channels, out_channels, cfg)
        self.skip_convs = nn.ModuleList(nn.Conv2d(cfg.dim * 2 ** k, cfg.dim * 2 ** k, 1) for k in range(cfg.n_down))
        for conv in self.skip_convs:  # zero: the bundled generator's function, exactly, at the start
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def encode_content(self, x: torch.Tensor):
        feats = []
        h = x
        for j, m in enumerate(self.content_encoder):
            h = m(h)
            if j < self.cfg.n_down:  # block 0: full size, block k: 1 / 2**k (the last down block feeds the code)
                feats.append(self.skip_convs[j](h))
        return h, feats

    def decode_start(self, content):
        return super().decode_start(content[0])

    def decode(self, content, params: torch.Tensor, halvings: int = 0, start=None) -> torch.Tensor:
        if halvings:
            raise ValueError("the experiment's skip decoder has no preview sizes")
        h, feats = content
        offset = 0
        for j, block in enumerate(self.adain_blocks):
            h = block(h, params[:, offset:offset + block.num_params], start if j == 0 else None)
            offset += block.num_params
        level = self.cfg.n_down
        after_upsample = False
        for m in self.upsampler:
            h = m(h)
            if isinstance(m, nn.Upsample):
                level -= 1
                after_upsample = True
            elif isinstance(m, ConvBlock) and after_upsample:
                h = h + feats[level]
                after_upsample = False
        return h


def first_transition_model(source: WorkflowModel, decoder: str) -> WorkflowModel:
    """A two-stage model (the source's first two stages) holding the source's first-transition networks."""
    cfg: WorkflowConfig = dataclasses.replace(source.config, stages=source.config.stages[:2],
                                              regularizer_trained=())
    model = WorkflowModel(cfg)
    st = cfg.stages
    if decoder == "skip":
        model.generators[0] = SkipGenerator(st[0].channels, st[1].channels, cfg.generator)
    for name in ("generators", "encoders", "inference", "discriminators", "latent_priors"):
        own = getattr(model, name)[0]
        missing, unexpected = own.load_state_dict(getattr(source, name)[0].state_dict(), strict=False)
        assert not unexpected and all(k.startswith("skip_convs") for k in missing), (name, missing, unexpected)
    return model


def train(args: argparse.Namespace) -> int:
    from core.train.config import TrainConfig
    from core.train.data import StageBank
    from core.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    source = bundle.load(args.model).float()
    model = first_transition_model(source, args.decoder)
    cfg = model.config
    tcfg = dataclasses.replace(TrainConfig(), hand_drawn=0.5, sample_every=0, checkpoint_minutes=1e9,
                               seed=args.seed).with_iters(generation=10 ** 7)
    with tempfile.TemporaryDirectory() as view:  # the dataset's first two stage folders, as a two-stage dataset
        for k, spec in enumerate(cfg.stages):
            os.symlink(Path(args.data).resolve() / f"{k}-{spec.name}", Path(view) / f"{k}-{spec.name}")
        bank = StageBank.from_folder(view, cfg.resolution, [s.channels for s in cfg.stages], progress=False)
    out = Path(args.out)
    trainer = Trainer(cfg, tcfg, bank, out, device="cpu", progress=False)
    # The trainer made a fresh model of this config; it takes the prepared networks (and optimisers over them).
    trainer.model = model.to(trainer.device, memory_format=torch.channels_last).requires_grad_(True).train()
    trainer.optims["generation_g"] = trainer._adam(list(model.generators.parameters())
                                                   + list(model.encoders.parameters()))
    trainer.optims["generation_d"] = trainer._adam(model.discriminators.parameters(), tcfg.lr_d)
    t0 = time.monotonic()
    trainer.run(("generation",), max_minutes=args.minutes)
    gen = {f"generator.{k}": v.detach().contiguous() for k, v in model.generators[0].state_dict().items()}
    enc = {f"encoder.{k}": v.detach().contiguous() for k, v in model.encoders[0].state_dict().items()}
    save_file({**gen, **enc}, str(out / "transition0.safetensors"))
    facts = {"decoder": args.decoder, "iterations": trainer.phase_done["generation"], "batch_size": tcfg.batch_size,
             "threads": args.threads, "minutes": round((time.monotonic() - t0) / 60, 2), "data": str(args.data)}
    (out / "experiment.json").write_text(json.dumps(facts, indent=1))
    print(json.dumps(facts))
    return 0


def _sharpness(x: torch.Tensor) -> float:
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return float(dx + dy)


@torch.no_grad()
def measure(model: WorkflowModel, data, order: list[int]) -> dict:
    g, e = model.generators[0].eval(), model.encoders[0].eval()
    psnr, l1, sharp = [], [], []
    for a in order:
        line, flat = (s[None] for s in data.load(a)[:2])
        mu, _ = e(flat)
        out = g.decode(g.encode_content(line), g.adain_params(mu)).clamp(-1, 1)
        psnr.append(float(psnr_01(out, flat)[0]))
        l1.append(float((out - flat).abs().mean() / 2))  # on the [0, 1] scale
        sharp.append(_sharpness(out) / max(_sharpness(flat), 1e-8))
    return {"psnr": statistics.mean(psnr), "l1": statistics.mean(l1), "sharpness": statistics.mean(sharp)}


def evaluate(args: argparse.Namespace) -> int:
    from core.evaluation.workflow import eval_order, open_test_set

    torch.set_num_threads(args.threads)
    source = bundle.load(args.model).float()
    data = open_test_set(args.data, source)
    order = eval_order(data.sample_names)[:args.limit]
    rows = {"bundle (start)": measure(first_transition_model(source, "munit"), data, order)}
    for run in args.runs:
        facts = json.loads((Path(run) / "experiment.json").read_text())
        model = first_transition_model(source, facts["decoder"])
        weights = load_file(str(Path(run) / "transition0.safetensors"))
        model.generators[0].load_state_dict({k[10:]: v for k, v in weights.items() if k.startswith("generator.")})
        model.encoders[0].load_state_dict({k[8:]: v for k, v in weights.items() if k.startswith("encoder.")})
        rows[f"{facts['decoder']} ({facts['iterations']} it, {facts['minutes']} min)"] = measure(model, data, order)
    print(f"{len(order)} TEST drawings from {args.data}: flat from the true line art, z encoded from the true flat")
    for name, r in rows.items():
        print(f"  {name:34s} PSNR {r['psnr']:6.2f} dB   L1 {r['l1']:.4f}   sharpness {r['sharpness']:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--decoder", choices=DECODERS, required=True)
    t.add_argument("--data", required=True, help="stage dataset with thin line art (the TRAIN split)")
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, default=25.0)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=train)
    e = sub.add_parser("eval")
    e.add_argument("--data", required=True, help="stage dataset with thin line art (the TEST split)")
    e.add_argument("--limit", type=int, default=64)
    e.add_argument("runs", nargs="+")
    e.set_defaults(func=evaluate)
    for p in (t, e):
        p.add_argument("--model", default=str(DEFAULT_MODEL))
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
