"""The one place that asks which accelerator is present."""

from __future__ import annotations

import torch

from core.errors import ArtflowError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(choice: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> CUDA if present, else MPS, else CPU. An explicit device that is absent is an error, not a fallback."""
    if isinstance(choice, torch.device):
        return choice
    choice = (choice or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ArtflowError("--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine")
        return torch.device(choice)
    if choice == "mps":
        if not _mps_available():
            raise ArtflowError("--device mps was asked for, but MPS is not available on this machine")
        return torch.device("mps")
    raise ArtflowError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def device_label(device: torch.device) -> str:
    """A short human description, e.g. 'CUDA: NVIDIA H100 (79 GB)' or 'CPU, 2 threads'."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU, {torch.get_num_threads()} threads"
