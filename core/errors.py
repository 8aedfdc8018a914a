"""Errors that reach the user. Each message names the file or value at fault and what to do."""

from __future__ import annotations


class ArtflowError(Exception):
    """Base class for every error the engine reports to a user (CLI prints it as one line, the app in a box)."""


class ImageError(ArtflowError):
    """An image file is missing, unreadable, corrupt, or cannot be taken by the model."""


class BundleError(ArtflowError):
    """A model bundle (config.json + model.safetensors) is missing, malformed or inconsistent."""


class ProjectError(ArtflowError):
    """A project file (.artflow) is missing, corrupt, of an unknown version, or made for another model."""


class DatasetError(ArtflowError):
    """A stage dataset folder is missing stages or has mismatched files."""


class CancelledError(ArtflowError):
    """Long work (refinement, training) was cancelled by the user; nothing was changed."""
