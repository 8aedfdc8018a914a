"""Files and formats: images in and out (bounded reading of untrusted files), atomic writes, `.artflow` projects,
model bundles and exports. Nothing here edits or runs a model."""
