"""Artwork generation network G_i (stage i -> stage i+1), MUNIT-style with AdaIN parameters from z."""

from __future__ import annotations

import torch
from torch import nn

from core.config import GeneratorConfig
from core.nn.blocks import MLP, AdaINResBlock, ConvBlock, ResBlock
from core.nn.memory_format import channels_last_boundary
from core.nn.upsample_conv import supports, upsample_conv


class AdaINGenerator(nn.Module):
    """Content encoder + AdaIN decoder. The AdaIN parameters are an argument of `decode`, so the editing engine can
    optimise them (MLP(z) + delta) while the content of the input is computed once."""

    def __init__(self, in_channels: int, out_channels: int, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.dim
        enc: list[nn.Module] = [ConvBlock(in_channels, dim, 7, norm="in", act="relu")]
        for _ in range(cfg.n_down):
            enc.append(ConvBlock(dim, dim * 2, 4, stride=2, norm="in", act="relu"))
            dim *= 2
        enc += [ResBlock(dim) for _ in range(cfg.n_res_content)]
        self.content_encoder = nn.Sequential(*enc)
        self.content_dim = dim
        self.adain_blocks = nn.ModuleList(AdaINResBlock(dim) for _ in range(cfg.n_res_adain))
        up: list[nn.Module] = []
        for _ in range(cfg.n_down):
            up += [nn.Upsample(scale_factor=2, mode="nearest"),
                   ConvBlock(dim, dim // 2, cfg.up_kernel, norm="ln", act="relu")]
            dim //= 2
        up.append(ConvBlock(dim, out_channels, 7, norm="none", act="tanh"))
        self.upsampler = nn.Sequential(*up)
        self.mlp = MLP(cfg.z_dim, self.num_adain_params, cfg.mlp_dim, cfg.mlp_layers)
        self.channels_last_on_cpu = True  # decode's default layout on the CPU; not a weight

    @property
    def num_adain_params(self) -> int:
        return sum(b.num_params for b in self.adain_blocks)

    def adain_param_is_bias(self) -> torch.Tensor:
        """(P,) bool mask: True where a parameter is an AdaIN bias, False where it is a scale."""
        d = self.content_dim
        one = torch.cat([torch.zeros(d), torch.ones(d), torch.zeros(d), torch.ones(d)]).bool()
        return one.repeat(len(self.adain_blocks))

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) in [-1, 1] -> content features (B, content_dim, H / 2**n_down, W / 2**n_down)."""
        return self.content_encoder(x)

    def adain_params(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) -> (B, P) AdaIN parameters."""
        return self.mlp(z)

    def decode_start(self, content: torch.Tensor) -> torch.Tensor:
        """What decoding `content` computes before the AdaIN parameters first matter (the first block's normalised
        first convolution): reusable across latent codes, like the content code itself."""
        return self.adain_blocks[0].first_norm(content)

    def decode(self, content: torch.Tensor, params: torch.Tensor, halvings: int = 0,
               start: torch.Tensor | None = None, folded: bool | None = None,
               channels_last: bool | None = None) -> torch.Tensor:
        """Content (B, C, h, w) and AdaIN parameters (B, P) -> image (B, Cout, H, W) in [-1, 1].
        halvings > 0 skips that many of the last nearest-neighbour upsamplings: the picture at H / 2**halvings
        from the same content code, a close likeness of the full one downsized (the slider's live preview; the
        convolutions after a skipped upsampling run on a quarter of the pixels). start: decode_start(content) when
        already known (the same picture, bit for bit). folded: an upsampling and the k x k convolution after it
        (k >= 5, MUNIT's) computed on the small picture (core/nn/upsample_conv.py: the same picture to float
        rounding, ~2.8x fewer multiply-adds); False runs the modules as defined (the benchmarks' baseline); None
        (default) folds on the CPU only: on CUDA it has not measured faster (H200, benchmarks/bench_paper.py, 256 px:
        11.5 ms per eager folded step, 6.3 ms per replayed unfolded CUDA graph; a folded graph not yet measured).
        channels_last: the upsampler (the decoder's large pictures) in channels_last activations, the result
        handed back NCHW (the same picture to float rounding); None (default) on the CPU only, where oneDNN's
        convolutions with few channels run faster so. Measured on 2 AMD EPYC threads: the bundled model's whole
        150-step refinement 0.91x the NCHW time (`benchmarks/bench_refine.py --variants exact,exact@nchw`), a paper
        configuration step 0.95x. `channels_last_on_cpu = False` turns the default off."""
        cpu = content.device.type == "cpu"
        if folded is None:
            folded = cpu
        if channels_last is None:
            channels_last = cpu and self.channels_last_on_cpu
        if not 0 <= halvings <= self.cfg.n_down:
            raise ValueError(f"halvings must be between 0 and {self.cfg.n_down}, got {halvings}")
        h = content
        offset = 0
        for j, block in enumerate(self.adain_blocks):
            h = block(h, params[:, offset:offset + block.num_params], start if j == 0 else None)
            offset += block.num_params
        if channels_last:
            h = channels_last_boundary(h)
        ups = [j for j, m in enumerate(self.upsampler) if isinstance(m, nn.Upsample)]
        skipped = set(ups[len(ups) - halvings:]) if halvings else set()
        modules = list(self.upsampler)
        j = 0
        while j < len(modules):
            m = modules[j]
            if j in skipped:
                j += 1
                continue
            if folded and j + 1 < len(modules) and supports(m, modules[j + 1]):
                block = modules[j + 1]
                h = upsample_conv(h, block[1].weight, block[1].bias)
                for rest in list(block)[2:]:  # the block's norm and activation
                    h = rest(h)
                j += 2
                continue
            h = m(h)
            j += 1
        return h.contiguous() if channels_last else h

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_content(x), self.adain_params(z))
