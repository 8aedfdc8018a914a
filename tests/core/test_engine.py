"""Core engine odds and ends: configuration, network shapes, devices, VGG perceptual weights, import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core import config
from core.config import StageSpec, WorkflowConfig
from core.editing.session import Session, run_to_end
from core.errors import ArtflowError, BundleError
from core.model import REGULARIZER_INIT, WorkflowModel
from core.nn.generator import AdaINGenerator
from core.nn.perceptual import VGG_ENV, vgg_weights_path
from core.nn.vgg import VGG16Features
from core.platform.device import device_label, resolve_device
from tests.core.engine_util import FOUR_STAGES, RES, image, single_thread, tiny_model  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


# ----- configuration -----

@pytest.mark.parametrize("make", [config.tiny, config.small, config.paper])
def test_presets_round_trip_through_json(make):
    cfg = make()
    assert WorkflowConfig.from_json(cfg.to_json()) == cfg
    four = make(stages=FOUR_STAGES)
    assert WorkflowConfig.from_json(four.to_json()) == four and four.num_transitions == 3


def test_preset_facts():
    assert config.paper().resolution == 256 and config.small().resolution == 128 and config.tiny().resolution == 32
    assert config.paper().generator.z_dim == 8  # the paper's 8-d latent
    assert config.tiny().stage_names == ["lineart", "flat", "detail"]


def test_stage_index_and_titles():
    cfg = config.tiny()
    assert cfg.stage_index("flat") == 1 and cfg.stage_index("2") == 2
    with pytest.raises(BundleError, match="lineart, flat, detail"):
        cfg.stage_index("colour")
    assert StageSpec("flat_colours", 3).title == "Flat colours" and StageSpec("x", 1, "Ink").title == "Ink"


def test_constructing_an_invalid_config_raises():
    with pytest.raises(BundleError, match="used twice"):
        config.tiny(stages=(StageSpec("a", 1), StageSpec("a", 3)))
    with pytest.raises(BundleError, match="at least 2 stages"):
        config.tiny(stages=(StageSpec("a", 1),))
    assert issubclass(BundleError, ArtflowError)


# ----- networks -----

def test_adain_parameters_are_8c_as_in_the_paper():
    g = AdaINGenerator(1, 3, config.paper().generator)
    c = g.content_dim
    assert c == 256 and g.num_adain_params == 8 * c  # two AdaIN residual blocks -> w in R^{8c}
    mask = g.adain_param_is_bias()
    assert mask.dtype == torch.bool and int(mask.sum()) == 4 * c
    assert mask[:c].logical_not().all() and mask[c:2 * c].all()  # [scale1, bias1, scale2, bias2] per block


def test_zero_adain_parameters_are_plain_instance_norm():
    """delta = 0 and MLP(z) = 0 give scale 1, bias 0: a well-behaved origin for the optimisation."""
    torch.manual_seed(0)
    g = AdaINGenerator(1, 3, config.tiny().generator).eval()
    content = g.encode_content(image(1, seed=0)[None])
    block = g.adain_blocks[0]
    zero = torch.zeros(1, block.num_params)
    x = content
    h = torch.relu(torch.nn.functional.instance_norm(block.conv1(x), eps=1e-5))
    expected = x + torch.nn.functional.instance_norm(block.conv2(h), eps=1e-5)
    torch.testing.assert_close(block(x, zero), expected)


@pytest.mark.parametrize("stages", [None, FOUR_STAGES], ids=["3 stages", "4 stages"])
def test_network_shapes(stages):
    m = tiny_model(seed=0, stages=stages)
    cfg = m.config
    assert len(m.generators) == len(m.encoders) == len(m.inference) == len(m.discriminators) == cfg.num_transitions
    for i in range(cfg.num_transitions):
        cin, cout = cfg.stages[i].channels, cfg.stages[i + 1].channels
        x = image(cin, seed=i)[None]
        y = image(cout, seed=i + 10)[None]
        out = m.generators[i](x, torch.randn(1, cfg.generator.z_dim))
        assert out.shape == (1, cout, RES, RES) and out.abs().max() <= 1
        assert m.inference[i](y).shape == (1, cin, RES, RES)
        mu, logvar = m.encoders[i](y)
        assert mu.shape == logvar.shape == (1, cfg.generator.z_dim)
        assert len(m.discriminators[i](y)) == cfg.discriminator.n_scales
        assert torch.equal(m.reg_weights[i], torch.full((m.generators[i].num_adain_params,), REGULARIZER_INIT))
    chain = m.infer_chain(image(cfg.stages[-1].channels, seed=99)[None])
    assert [c.shape[1] for c in chain] == [s.channels for s in cfg.stages]


def test_small_preset_builds_and_runs():
    cfg = config.small()
    torch.manual_seed(0)
    m = WorkflowModel(cfg).eval()
    r = cfg.resolution
    with torch.no_grad():
        chain = m.infer_chain(torch.zeros(1, 3, r, r))
        assert [tuple(c.shape) for c in chain] == [(1, 1, r, r), (1, 3, r, r), (1, 3, r, r)]
        g = m.generators[0]
        out = g.decode(g.encode_content(chain[0]), torch.zeros(1, g.num_adain_params))
        assert out.shape == (1, 3, r, r)


def test_paper_preset_builds():
    """The 256 px paper model (run by benchmarks/bench_engine.py; too slow to run here): its U-Net goes down to a
    1x1 bottleneck, like pix2pix's unet_256."""
    m = WorkflowModel(config.paper())
    unet = m.inference[0]
    assert len(unet.downs) == 8 and 256 // 2 ** len(unet.downs) == 1
    assert m.generators[0].num_adain_params == 8 * 256


# ----- devices -----

def _no_accelerator() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


@pytest.mark.skipif(not _no_accelerator(), reason="an accelerator is present")
def test_auto_device_is_cpu_without_an_accelerator():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert "CPU" in device_label(resolve_device("auto"))


def test_explicit_devices():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ArtflowError, match="unknown device 'tpu'; choose one of auto, cpu, cuda, mps"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_asked_for_but_absent():
    with pytest.raises(ArtflowError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ArtflowError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    with pytest.raises(ArtflowError, match="no CUDA GPU"):
        Session(tiny_model(seed=0), "cuda")


@pytest.mark.skipif(getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
                    reason="MPS is present")
def test_mps_asked_for_but_absent():
    with pytest.raises(ArtflowError, match="MPS is not available"):
        resolve_device("mps")


# ----- VGG perceptual weights (a local file; nothing is downloaded) -----

@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    vgg = VGG16Features()
    state = {k: v.contiguous() for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry more than the features we use
    path = tmp_path_factory.mktemp("vgg") / "vgg16.safetensors"
    save_file(state, str(path))
    return path, vgg


def test_vgg_weights_load(vgg_file):
    path, vgg = vgg_file
    loaded = VGG16Features.from_file(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in vgg.state_dict().items())
    feats = loaded(image(1, seed=0)[None])  # a 1-channel stage is expanded to RGB
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]


def test_vgg_weights_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(VGG_ENV, raising=False)
    assert vgg_weights_path() is None
    monkeypatch.setenv(VGG_ENV, str(tmp_path / "v.safetensors"))
    assert vgg_weights_path() == tmp_path / "v.safetensors"
    assert vgg_weights_path(tmp_path / "explicit") == tmp_path / "explicit"


def test_bad_vgg_weights(vgg_file, tmp_path):
    path, vgg = vgg_file
    with pytest.raises(BundleError, match="file not found"):
        VGG16Features.from_file(tmp_path / "absent.safetensors")
    (tmp_path / "trunc.safetensors").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        VGG16Features.from_file(tmp_path / "trunc.safetensors")
    state = {k: v.contiguous() for k, v in vgg.state_dict().items()}
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "features.21.weight"}, "missing tensors features.21"),
        "shape": ({**state, "features.0.weight": torch.zeros(3, 3, 3, 3)}, "'features.0.weight' has shape"),
        "nan": ({**state, "features.2.bias": torch.full((64,), float("nan"))}, "'features.2.bias' holds NaN"),
    }
    for name, (bad, message) in cases.items():
        save_file(bad, str(tmp_path / f"{name}.safetensors"))
        with pytest.raises(BundleError, match=message):
            VGG16Features.from_file(tmp_path / f"{name}.safetensors")


def test_session_refines_with_vgg_features(vgg_file):
    path, _ = vgg_file
    s = Session(tiny_model(seed=0), "cpu", vgg_weights=str(path))
    assert s.perceptual_kind == "vgg16"
    s.load_artwork(image(3, seed=1))
    report = run_to_end(s.refine(steps=10))
    assert report.completed and report.perceptual == "vgg16"
    assert all(t.loss_end < t.loss_start for t in report.transitions)


def test_session_without_vgg_uses_the_discriminator(monkeypatch):
    monkeypatch.delenv(VGG_ENV, raising=False)
    assert Session(tiny_model(seed=0), "cpu").perceptual_kind == "discriminator"


# ----- import hygiene -----

def _pyside_modules_after(code: str) -> list[str]:
    check = code + "; import sys; print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1])


QT_MODULE = "core.data.fluent_emoji"  # the one core module allowed to use Qt (QtSvg renders the emoji)


def _core_modules() -> list[str]:
    """Every module of core/ on disk, packages included."""
    names = []
    for path in sorted((REPO / "core").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_core_imports_no_qt():
    """Importing every core module (as a fresh interpreter would, all in one) loads no PySide6 module."""
    modules = [m for m in _core_modules() if m != QT_MODULE]
    assert {"core.editing.session", "core.cli.entry", "core.train.trainer", "core.evaluation.workflow"} <= set(modules)
    assert _pyside_modules_after("; ".join(f"import {m}" for m in modules)) == []


def test_qt_import_check_detects_qt():
    """Positive control for the test above: the check does see PySide6 when it is imported."""
    pytest.importorskip("PySide6.QtCore")
    assert "PySide6.QtCore" in _pyside_modules_after("import PySide6.QtCore")
