"""Artflow core engine: the workflow model, its training and the editing session. No Qt here."""

from __future__ import annotations

__version__ = "0.1.0"
