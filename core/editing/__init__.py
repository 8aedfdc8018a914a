"""Editing an artwork through its workflow: the session (stages, latent codes, AdaIN deltas), the AdaIN refinement
and its learned regulariser, latent codes and their prior, and which pixels an edit touched."""
