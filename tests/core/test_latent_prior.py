"""Latent priors (core.latent_prior, fitted by core.train.latent_prior_fit): the fit matches the encoded codes'
statistics, bundles keep them (and older bundles without them load with N(0, I)), sessions start at and sample from
them, training exports them, and `artflow fit-prior` updates a bundle."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from core.cli import main as cli_main
from core.editing.session import Z_RANGE, Session
from core.errors import BundleError
from core.files import bundle
from core.files.bundle import WEIGHTS_FILE
from core.latent_prior import LatentPrior
from core.train.data import StageBank
from core.train.latent_prior_fit import JITTER, fit_latent_prior
from tests.core.engine_util import image, single_thread, tiny_model  # noqa: F401
from tests.synthetic import make_stage_dataset


class _TableEncoder(nn.Module):
    """A stand-in encoder that returns known codes: the image's first pixel selects a row of `codes`."""

    def __init__(self, codes: torch.Tensor) -> None:
        super().__init__()
        self.codes = codes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = x[:, 0, 0, 0].round().long()
        mu = self.codes[idx]
        return mu, torch.zeros_like(mu)


def _fitted_prior(z_dim: int = 4, seed: int = 0) -> LatentPrior:
    g = torch.Generator().manual_seed(seed)
    prior = LatentPrior(z_dim)
    a = torch.randn(z_dim, z_dim, generator=g)
    prior.set(torch.randn(z_dim, generator=g) + 2.0, torch.linalg.cholesky(a @ a.T + torch.eye(z_dim)))
    return prior


def test_a_new_prior_is_the_standard_normal():
    prior = LatentPrior(8)
    assert prior.is_standard
    u = torch.randn(5, 8)
    assert torch.equal(prior.from_standard(u), u)


def test_standard_coordinates_round_trip():
    prior = _fitted_prior()
    assert not prior.is_standard
    u = torch.randn(10, 4)
    z = prior.from_standard(u)
    assert torch.allclose(prior.to_standard(z), u, atol=1e-5)
    assert torch.allclose(prior.from_standard(torch.zeros(4)), prior.mean)


def test_fit_recovers_mean_and_covariance_of_the_codes():
    g = torch.Generator().manual_seed(1)
    # Codes like a collapsed encoder's: one dimension carries everything, the others are constant.
    codes = torch.zeros(400, 3)
    codes[:, 0] = 1.7 + 0.3 * torch.randn(400, generator=g)
    codes[:, 2] = -0.5
    enc = _TableEncoder(codes)
    images = torch.arange(400, dtype=torch.float32).reshape(400, 1, 1, 1).expand(400, 1, 2, 2)
    mean, tril = fit_latent_prior(enc, [images[:150], images[150:]])
    assert torch.allclose(mean, codes.mean(0), atol=1e-5)
    cov = tril @ tril.T
    assert torch.allclose(cov, torch.cov(codes.T) + JITTER * torch.eye(3), atol=1e-5)
    assert torch.equal(tril, tril.tril())
    with pytest.raises(ValueError, match="at least 2"):
        fit_latent_prior(enc, [images[:1]])


def test_model_samples_within_the_clip_of_its_prior():
    model = tiny_model(seed=0)
    model.latent_priors[1].set(*(lambda p: (p.mean, p.scale_tril))(_fitted_prior(model.config.generator.z_dim)))
    g = torch.Generator().manual_seed(0)
    z = model.sample_latents(1, 500, g, clip=Z_RANGE)
    u = model.latent_priors[1].to_standard(z)
    assert u.abs().max() <= Z_RANGE + 1e-4
    assert torch.allclose(z.mean(0), model.latent_priors[1].mean, atol=0.5)
    # transition 0 keeps N(0, I)
    z0 = model.sample_latents(0, 500, torch.Generator().manual_seed(0), clip=Z_RANGE)
    assert z0.abs().max() <= Z_RANGE and abs(float(z0.mean())) < 0.2


# ----- bundles -----

@pytest.fixture
def prior_model():
    model = tiny_model(seed=0)
    for i, p in enumerate(model.latent_priors):
        fitted = _fitted_prior(model.config.generator.z_dim, seed=i)
        p.set(fitted.mean, fitted.scale_tril)
    return model


def test_bundle_keeps_the_prior_bit_exact(prior_model, tmp_path):
    loaded = bundle.load(bundle.save(prior_model, tmp_path / "b"))
    for a, b in zip(prior_model.latent_priors, loaded.latent_priors):
        assert torch.equal(a.mean, b.mean) and torch.equal(a.scale_tril, b.scale_tril)


def test_bundle_without_a_prior_loads_with_the_standard_normal(prior_model, tmp_path):
    path = bundle.save(prior_model, tmp_path / "old")
    state = {k: v for k, v in load_file(str(path / WEIGHTS_FILE)).items() if not k.startswith("latent_priors.")}
    save_file(state, str(path / WEIGHTS_FILE))
    loaded = bundle.load(path)
    assert all(p.is_standard for p in loaded.latent_priors)
    assert torch.equal(loaded.generators[0].mlp[0].weight, prior_model.generators[0].mlp[0].weight)


@pytest.mark.parametrize("change", ["zero-diagonal", "upper"])
def test_bundle_with_a_broken_prior_is_refused(prior_model, tmp_path, change):
    path = bundle.save(prior_model, tmp_path / "broken")
    state = load_file(str(path / WEIGHTS_FILE))
    tril = state["latent_priors.1.scale_tril"].clone()
    if change == "zero-diagonal":
        tril[2, 2] = 0.0
    else:
        tril[0, 3] = 0.5
    state["latent_priors.1.scale_tril"] = tril
    save_file(state, str(path / WEIGHTS_FILE))
    with pytest.raises(BundleError, match="latent prior of transition 1 is not a Cholesky factor"):
        bundle.load(path)


# ----- sessions -----

def test_session_starts_at_the_prior_mean_and_samples_from_it(prior_model):
    session = Session(prior_model, "cpu")
    means = [p.mean for p in prior_model.latent_priors]
    assert all(torch.equal(z, m) for z, m in zip(session.latents, means))
    session.latents[0] += 5.0
    session.start_from(image(1, seed=3))
    assert all(torch.equal(z, m) for z, m in zip(session.latents, means))
    z = session.sample_latent(1, seed=7)
    u = prior_model.latent_priors[1].to_standard(z)
    assert u.abs().max() <= Z_RANGE + 1e-4
    assert torch.equal(z, session.sample_latent(1, seed=7))


# ----- training and the CLI -----

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_stage_dataset(tmp_path_factory.mktemp("prior-data"), n=10, size=32)


def _expected_prior(model, data_dir, i):
    bank = StageBank.from_folder(str(data_dir), 32, [1, 3, 3], progress=False)
    x = bank.batch(torch.arange(len(bank)), None, False, torch.device("cpu"))[i + 1]
    return fit_latent_prior(model.encoders[i], [x])


def test_training_exports_fitted_priors(data_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train", str(data_dir), "--out", str(out), "--preset", "tiny", "--batch-size", "2", "--threads", "1",
            "--sample-every", "0", "--phases", "generation", "--iters", "generation=2"]
    assert cli_main(args) == 0
    model = bundle.load(out / "bundle")
    for i, prior in enumerate(model.latent_priors):
        assert not prior.is_standard
        mean, tril = _expected_prior(model, data_dir, i)
        # the bundle stores fp16: the fit from the fp16 encoder matches within that precision
        assert torch.allclose(prior.mean, mean, atol=2e-3, rtol=2e-3)
        assert torch.allclose(prior.scale_tril, tril, atol=2e-3, rtol=2e-3)


def test_cli_fit_prior_updates_a_bundle(data_dir, tmp_path, capsys):
    src = bundle.save(tiny_model(seed=0), tmp_path / "src")
    out = tmp_path / "fitted"
    assert cli_main(["fit-prior", str(data_dir), "--model", str(src), "-o", str(out), "--device", "cpu"]) == 0
    assert all(p.is_standard for p in bundle.load(src).latent_priors)  # the source is untouched
    model = bundle.load(out)
    for i, prior in enumerate(model.latent_priors):
        mean, _ = _expected_prior(model, data_dir, i)
        assert torch.allclose(prior.mean, mean, atol=2e-3, rtol=2e-3)
    assert "model bundle written to" in capsys.readouterr().err


def test_cli_fit_prior_in_place_keeps_the_files_beside_the_weights_and_their_precision(data_dir, tmp_path):
    path = bundle.save(tiny_model(seed=0), tmp_path / "b", model_card="card")
    (path / "eval-metrics.json").write_text("{}")
    before = load_file(str(path / WEIGHTS_FILE))
    assert cli_main(["fit-prior", str(data_dir), "--model", str(path), "--device", "cpu"]) == 0
    assert (path / "MODEL_CARD.md").read_text() == "card" and (path / "eval-metrics.json").read_text() == "{}"
    after = load_file(str(path / WEIGHTS_FILE))
    assert not bundle.stored_half(path)  # an fp32 bundle stays fp32
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("latent_priors."))
    assert not all(p.is_standard for p in bundle.load(path).latent_priors)


def test_cli_generate_takes_z_in_the_priors_standard_deviations(data_dir, tmp_path):
    import json

    model = tiny_model(seed=0)
    prior = model.latent_priors[0]
    prior.set(torch.linspace(1, 2, 8), 0.5 * torch.eye(8))
    path = bundle.save(model, tmp_path / "b")
    line = next((data_dir / "0-lineart").iterdir())
    out = tmp_path / "gen"
    z = ",".join(["2"] + ["0"] * 7)
    assert cli_main(["generate", str(line), "-o", str(out), "--model", str(path), "--z", f"flat={z}",
                     "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    expected = torch.linspace(1, 2, 8)
    expected[0] += 1.0  # 2 standard deviations of 0.5
    assert torch.allclose(torch.tensor(report["latents"]["flat"]), expected, atol=1e-5)
    assert report["latent_coords"]["flat"] == pytest.approx([2.0] + [0.0] * 7, abs=1e-5)
    assert cli_main(["generate", str(line), "-o", str(tmp_path / "mean"), "--model", str(path), "--mean-z",
                     "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "mean" / "report.json").read_text())
    assert torch.allclose(torch.tensor(report["latents"]["flat"]), torch.linspace(1, 2, 8), atol=1e-5)


def test_cli_fit_prior_needs_two_drawings(data_dir, tmp_path, capsys):
    one = tmp_path / "one"
    for sub in ("0-lineart", "1-flat", "2-detail"):
        (one / sub).mkdir(parents=True)
        shutil.copy(next((data_dir / sub).iterdir()), one / sub / "a.png")
    src = bundle.save(tiny_model(seed=0), tmp_path / "src")
    assert cli_main(["fit-prior", str(one), "--model", str(src), "--device", "cpu"]) == 2
    assert "at least 2 drawings" in capsys.readouterr().err
    assert all(p.is_standard for p in bundle.load(src).latent_priors)
