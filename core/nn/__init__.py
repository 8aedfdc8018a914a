"""Networks of the workflow model. Images are (B, C, H, W) tensors in [-1, 1]."""
