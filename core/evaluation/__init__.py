"""Measuring a model (`artflow eval`): workflow inference, reconstruction and edits on a test split, the edit
benchmark against no-model baselines, the image measures and the report."""
