"""Panels around the canvas: the stage strip, the latent (variation) panel, the refinement panel, tool options."""
