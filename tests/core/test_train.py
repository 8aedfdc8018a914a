"""Training: each phase lowers its losses on tiny generated data, resume is exact, a bundle comes out and loads,
and two gloo ranks under torchrun keep identical weights."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from core import config
from core.errors import ArtflowError
from core.files import bundle
from core.model import WorkflowModel
from core.train.checkpoint import LEGACY_CHECKPOINT, read_checkpoint, write_checkpoint
from core.train.config import PHASES, TrainConfig, quick
from core.train.data import StageBank
from core.train.phases import latent_regression
from core.train.trainer import CHECKPOINT, Trainer
from tests.synthetic import make_stage_dataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_stage_dataset(tmp_path_factory.mktemp("data"), n=12, size=32)


@pytest.fixture(scope="module")
def bank(data_dir) -> StageBank:
    return StageBank.from_folder(str(data_dir), 32, [1, 3, 3], progress=False)


def _cfg(**iters: int) -> TrainConfig:
    base = TrainConfig(iters={p: 0 for p in PHASES}, batch_size=4, lr=1e-3, log_every=1, sample_every=0,
                       augment=False)
    return base.with_iters(**iters)


def _mean(history: list[dict], phase: str, key: str, first: bool, k: int = 6) -> float:
    vals = [h[key] for h in history if h["phase"] == phase]
    part = vals[:k] if first else vals[-k:]
    return sum(part) / len(part)


def test_inference_phases_lower_l1(bank, tmp_path):
    tr = Trainer(config.tiny(), _cfg(**{"inference": 40, "inference-joint": 10}), bank, tmp_path, device="cpu",
                 progress=False)
    tr.run(("inference", "inference-joint"))
    assert _mean(tr.history, "inference", "inf_l1", False) < 0.8 * _mean(tr.history, "inference", "inf_l1", True)


def test_generation_phases_lower_l1(bank, tmp_path):
    tr = Trainer(config.tiny(), _cfg(**{"generation": 40, "generation-joint": 6}), bank, tmp_path, device="cpu",
                 progress=False)
    tr.run(("generation", "generation-joint"))
    assert _mean(tr.history, "generation", "gen_l1", False) < 0.8 * _mean(tr.history, "generation", "gen_l1", True)
    assert any("gen_cycle" in h for h in tr.history)


def test_latent_regression_trains_the_generator_only():
    model = WorkflowModel(config.tiny())
    g, e = model.generators[0], model.encoders[0]
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    z = torch.randn(2, g.cfg.z_dim)
    latent_regression(e, g(x, z), z).backward()
    assert all(p.grad is None for p in e.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_regularizer_phase_learns_w_and_refinement_helps(bank, tmp_path):
    tr = Trainer(config.tiny(), _cfg(regularizer=8), bank, tmp_path, device="cpu", progress=False)
    before = [w.detach().clone() for w in tr.model.reg_weights]
    out = tr.run(("regularizer",))
    logs = [h for h in tr.history if h["phase"] == "regularizer"]
    assert len(logs) == 16  # 8 per transition
    assert all(h["reg_after"] < h["reg_before"] for h in logs)  # the unrolled AdaIN steps reduce L^Ada
    for w0, w1 in zip(before, tr.model.reg_weights):
        assert not torch.equal(w0, w1.detach())  # w received gradients
        assert (w1 >= 0).all()
    loaded = bundle.load(out)
    assert loaded.config.regularizer_trained == (True, True)


def test_regularizer_warm_start_continues_a_refinement(bank, tmp_path):
    """With reg_warm_max, the differentiable steps start after ordinary refinement steps: their loss before the
    unrolled steps is already below the encoder-only loss, and w still learns."""
    tr = Trainer(config.tiny(), dataclasses.replace(_cfg(regularizer=6), reg_warm_max=20), bank, tmp_path,
                 device="cpu", progress=False)
    before = [w.detach().clone() for w in tr.model.reg_weights]
    tr.run(("regularizer",))
    logs = [h for h in tr.history if h["phase"] == "regularizer"]
    warms = [h["reg_warm"] for h in logs]
    assert all(0 <= w <= 20 for w in warms) and len(set(warms)) > 1  # drawn per iteration
    assert all(h["reg_after"] < h["reg_before"] for h in logs)
    for w0, w1 in zip(before, tr.model.reg_weights):
        assert not torch.equal(w0, w1.detach())


def test_regularizer_settings_are_validated():
    with pytest.raises(ArtflowError, match="reg_unroll"):
        TrainConfig(reg_unroll=1)
    with pytest.raises(ArtflowError, match="reg_warm_max"):
        TrainConfig(reg_warm_max=-1)


def test_resume_is_exact(bank, tmp_path):
    cfg = _cfg(**{"inference": 4, "generation": 4, "regularizer": 2})
    phases = ("inference", "generation", "regularizer")
    straight = Trainer(config.tiny(), cfg, bank, tmp_path / "a", device="cpu", progress=False)
    straight.run(phases)

    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    first = Trainer(config.tiny(), cfg, bank, tmp_path / "b", device="cpu", progress=False)
    assert first.run(phases, should_stop=stop_after_five) is None
    assert (tmp_path / "b" / CHECKPOINT).exists()
    second = Trainer(config.tiny(), cfg, bank, tmp_path / "b", device="cpu", progress=False)
    assert second.resumed and second.phase_done["generation"] == 1
    second.run(phases)
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_is_safetensors_with_the_optimiser_state(bank, tmp_path):
    tr = Trainer(config.tiny(), _cfg(inference=2), bank, tmp_path, device="cpu", progress=False)
    tr.run(("inference",))
    tensors = load_file(tmp_path / CHECKPOINT)  # a plain safetensors file: no pickle anywhere
    moments = [k for k in tensors if k.startswith("/optims/inference_g/state/") and k.endswith("/exp_avg")]
    assert len(moments) == len(list(tr.model.inference.parameters()))
    state = read_checkpoint(tmp_path / CHECKPOINT)
    saved = state["optims"]["inference_g"]
    live = tr.optims["inference_g"].state_dict()
    assert saved["param_groups"] == live["param_groups"]  # settings back from the JSON, betas still a tuple
    assert isinstance(saved["param_groups"][0]["betas"], tuple) and set(saved["state"]) == set(live["state"])
    assert all(torch.equal(saved["state"][i][k], live["state"][i][k]) for i in live["state"] for k in live["state"][i])
    assert state["phase_done"]["inference"] == 2


def test_checkpoint_roundtrip_keeps_types(tmp_path):
    state = {"a": (1, 2.5, None), "b": {0: torch.arange(3), 7: {"x": [torch.ones(2, dtype=torch.uint8)]}},
             "c": "text", "d": True}
    write_checkpoint(state, tmp_path / "c.safetensors")
    back = read_checkpoint(tmp_path / "c.safetensors")
    assert back["a"] == (1, 2.5, None) and back["c"] == "text" and back["d"] is True
    assert list(back["b"]) == [0, 7] and torch.equal(back["b"][0], torch.arange(3))
    assert back["b"][7]["x"][0].dtype == torch.uint8


def test_old_pickle_checkpoint_is_refused_not_loaded(bank, tmp_path):
    (tmp_path / LEGACY_CHECKPOINT).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ArtflowError, match="earlier Artflow version") as info:
        Trainer(config.tiny(), _cfg(inference=1), bank, tmp_path, device="cpu", progress=False)
    assert "\n" not in str(info.value)


def test_damaged_checkpoint_is_one_clear_error(bank, tmp_path):
    Trainer(config.tiny(), _cfg(inference=1), bank, tmp_path, device="cpu", progress=False).run(("inference",))
    data = (tmp_path / CHECKPOINT).read_bytes()
    (tmp_path / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtflowError, match="cannot be read"):
        Trainer(config.tiny(), _cfg(inference=1), bank, tmp_path, device="cpu", progress=False)
    save_file({"x": torch.zeros(1)}, tmp_path / CHECKPOINT)
    with pytest.raises(ArtflowError, match="not an Artflow training checkpoint"):
        Trainer(config.tiny(), _cfg(inference=1), bank, tmp_path, device="cpu", progress=False)


def test_checkpoint_of_another_model_is_refused(bank, tmp_path):
    Trainer(config.tiny(), _cfg(inference=1), bank, tmp_path, device="cpu", progress=False).run(("inference",))
    other = config.tiny(resolution=64)
    with pytest.raises(ArtflowError, match="another model configuration"):
        Trainer(other, _cfg(inference=1), bank, tmp_path, device="cpu", progress=False)


def test_cli_train_writes_a_loadable_bundle_and_samples(data_dir, tmp_path):
    from core.cli import main

    out = tmp_path / "run"
    args = ["train", str(data_dir), "--out", str(out), "--preset", "tiny", "--batch-size", "2", "--sample-every",
            "2", "--threads", "1"] + [x for p in PHASES for x in ("--iters", f"{p}=2")]
    assert main(args) == 0
    model = bundle.load(out / "bundle")
    assert model.config.stage_names == ["lineart", "flat", "detail"]
    assert model.config.stages[0].label == "Line art"
    assert list((out / "samples").glob("*.png"))
    assert (out / "log.jsonl").read_text().count("\n") >= 5


def test_cli_train_bad_phase_is_one_clear_line(data_dir, tmp_path, capsys):
    from core.cli import main

    code = main(["train", str(data_dir), "--out", str(tmp_path / "r"), "--preset", "tiny", "--iters", "warmup=3"])
    assert code == 2
    assert "unknown training phase" in capsys.readouterr().err
    code = main(["train", str(data_dir), "--out", str(tmp_path / "r"), "--preset", "tiny", "--reset-encoders"])
    assert code == 2
    assert "--reset-encoders needs --init" in capsys.readouterr().err
    code = main(["train", str(data_dir), "--out", str(tmp_path / "r"), "--preset", "tiny", "--reset-regularizer"])
    assert code == 2
    assert "--reset-regularizer needs --init" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_keep_identical_weights(data_dir, tmp_path):
    torchrun = shutil.which("torchrun")
    cmd = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + ["--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
                                 str(worker), str(data_dir), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    # and training did move the weights away from the shared initialisation
    torch.manual_seed(0)
    from core.model import WorkflowModel

    init = WorkflowModel(config.tiny()).state_dict()
    assert any(not torch.equal(init[k], r0[k]) for k in r0 if k.startswith("generators"))
    assert (tmp_path / "bundle" / "model.safetensors").exists()


def test_quick_config_is_valid():
    cfg = quick(2)
    assert set(cfg.iters) == set(PHASES)
    with pytest.raises(ArtflowError):
        dataclasses.replace(cfg, batch_size=0)


def test_init_from_a_bundle_with_fresh_encoders(bank, tmp_path):
    source = WorkflowModel(config.tiny())
    torch.manual_seed(123)
    for p in source.parameters():
        p.data.normal_()
    path = bundle.save(source, tmp_path / "init")
    kept = Trainer(config.tiny(), _cfg(), bank, tmp_path / "a", device="cpu", progress=False, init_bundle=path)
    fresh = Trainer(config.tiny(), _cfg(), bank, tmp_path / "b", device="cpu", progress=False, init_bundle=path,
                    reset_encoders=True)
    src = source.state_dict()
    for name, value in fresh.model.state_dict().items():
        if name.startswith("encoders."):
            assert not torch.equal(value, src[name]), name
            assert torch.equal(kept.model.state_dict()[name], src[name])
        else:
            assert torch.equal(value, src[name]), name


def test_init_from_a_bundle_with_a_fresh_regulariser(bank, tmp_path):
    """--reset-regularizer: Algorithm 1's w from its start (0.001 everywhere), every other weight the bundle's."""
    from core.model import REGULARIZER_INIT

    source = WorkflowModel(config.tiny())
    torch.manual_seed(7)
    for p in source.parameters():
        p.data.uniform_(0.01, 0.5)
    path = bundle.save(source, tmp_path / "init")
    fresh = Trainer(config.tiny(), _cfg(), bank, tmp_path / "a", device="cpu", progress=False, init_bundle=path,
                    reset_regularizer=True)
    src = source.state_dict()
    for name, value in fresh.model.state_dict().items():
        if name.startswith("reg_weights."):
            assert torch.all(value == REGULARIZER_INIT), name
        else:
            assert torch.equal(value, src[name]), name


def test_discriminators_can_have_their_own_learning_rate(bank, tmp_path):
    tr = Trainer(config.tiny(), dataclasses.replace(_cfg(), lr=5e-4, lr_d=2e-4), bank, tmp_path, device="cpu",
                 progress=False)
    assert tr.optims["generation_g"].param_groups[0]["lr"] == 5e-4
    assert tr.optims["generation_d"].param_groups[0]["lr"] == 2e-4
    assert tr.optims["inference_d"].param_groups[0]["lr"] == 2e-4
    with pytest.raises(ArtflowError, match="learning rates"):
        TrainConfig(lr_d=0.0)


def test_training_judges_the_thread_count_before_each_iteration(bank, tmp_path):
    from core.platform.threads import ThreadGovernor

    tr = Trainer(config.tiny(), _cfg(inference=3), bank, tmp_path, device="cpu", progress=False,
                 adapt_threads=True)
    assert isinstance(tr.governor, ThreadGovernor)
    assert Trainer(config.tiny(), _cfg(inference=3), bank, tmp_path / "fixed", device="cpu",
                   progress=False).governor is None  # off unless asked for (the CLI asks unless --threads)

    class Counting:
        calls = 0

        def apply(self) -> int:
            Counting.calls += 1
            return torch.get_num_threads()

    tr.governor = Counting()
    tr.run(("inference",))
    assert Counting.calls == 3
