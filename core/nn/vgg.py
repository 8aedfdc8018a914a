"""VGG16 perceptual features with torchvision's `features` layer layout, loaded from a local safetensors file.

Nothing is downloaded: a user who wants the VGG perceptual loss saves torchvision's vgg16 `state_dict()` once as
safetensors:
    safetensors.torch.save_file(torchvision.models.vgg16(weights="DEFAULT").state_dict(), "vgg16.safetensors")
and points ARTFLOW_VGG16 (or the `vgg_weights` argument) at that file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.errors import BundleError

# torchvision vgg16 `features`: numbers are conv widths, "M" is max-pooling.
_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_TAPS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = 3
        for v in _LAYOUT[:23]:  # up to relu4_3
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(prev, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                prev = int(v)
        self.features = nn.Sequential(*layers[:23])
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1 or 3, H, W) in [-1, 1] -> activations at relu1_2, relu2_2, relu3_3, relu4_3."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x)
        return out

    @classmethod
    def from_file(cls, path: str | Path) -> VGG16Features:
        from safetensors.torch import load_file

        from core.safe_io import MAX_WEIGHTS_FILE_BYTES, check_regular_file

        path = Path(path)
        if not path.exists():
            raise BundleError(f"VGG16 weights {path}: file not found")
        check_regular_file(path, MAX_WEIGHTS_FILE_BYTES, BundleError, "VGG16 weights (a safetensors file)")
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise BundleError(f"VGG16 weights {path}: not a readable safetensors file ({exc})") from None
        model = cls()
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        if missing:
            raise BundleError(f"VGG16 weights {path}: missing tensors {', '.join(missing[:4])}")
        for k, ref in expected.items():
            if not state[k].is_floating_point():
                raise BundleError(f"VGG16 weights {path}: tensor '{k}' is {state[k].dtype}, expected floating point")
            if tuple(state[k].shape) != tuple(ref.shape):
                raise BundleError(f"VGG16 weights {path}: tensor '{k}' has shape {tuple(state[k].shape)}, "
                                  f"VGG16 expects {tuple(ref.shape)}")
            if not torch.isfinite(state[k]).all():
                raise BundleError(f"VGG16 weights {path}: tensor '{k}' holds NaN or infinite values")
        # Tensors past relu4_3 (features.23+, classifier.*) are ignored.
        model.load_state_dict({k: state[k].to(ref.dtype) for k, ref in expected.items()})
        model.eval().requires_grad_(False)
        return model
