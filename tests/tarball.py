"""A .tgz of JSON files, as npm packs an @iconify-json package (for the emoji builders' tests; no network)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path


def write_json_tgz(path: Path, files: dict[str, object]) -> Path:
    """Write `files` (member name -> JSON-able object) into the gzip tarball `path`."""
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in files.items():
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
