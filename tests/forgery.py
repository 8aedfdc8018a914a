"""Forged input files for the fuzz tests (tests/core/test_fuzz_*.py) and the long run (tools/fuzz_readers.py).

Each forger takes a `random.Random` and writes one file (or bundle folder) derived from a valid one by a random
mutation: every case is reproducible from its seed. `check_*` runs the reader the way the CLI does and returns
"ok" (read, and the result is sane) or "clean" (refused with the reader's one-line error); anything else (another
exception, an insane result) propagates to the caller as a failure.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# ----- images -----
IMAGE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F")
# Formats Pillow can write, and the modes each one takes (the rest are converted to RGB first).
IMAGE_FORMATS = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "I", "I;16", "F"),
    "JPEG": ("L", "RGB", "CMYK"),
    "BMP": ("1", "L", "P", "RGB"),
    "GIF": ("L", "P"),
    "WEBP": ("RGB", "RGBA"),
    "PPM": ("1", "L", "RGB"),
}
SUFFIX = {"PNG": ".png", "TIFF": ".tif", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp", "PPM": ".ppm"}


def random_image(rng: random.Random, mode: str | None = None) -> Image.Image:
    mode = mode or rng.choice(IMAGE_MODES)
    w, h = rng.randint(1, 48), rng.randint(1, 48)
    data = np.random.default_rng(rng.getrandbits(32)).integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image.fromarray(data, "RGBA")
    if mode == "P":
        img = img.convert("RGB").quantize(rng.randint(2, 16))
        if rng.random() < 0.5:
            img.info["transparency"] = rng.randint(0, 1)
        return img
    if mode == "PA":
        return img.convert("RGB").quantize(8).convert("PA")
    if mode == "F":
        return Image.fromarray(data[..., 0].astype(np.float32) / rng.choice((1.0, 255.0)))  # float32 -> mode F
    if mode == "I;16":
        return Image.fromarray(data[..., 0].astype(np.uint16) * 257)  # uint16 -> mode I;16
    if mode == "I":
        return Image.fromarray(data[..., 0].astype(np.int32) * rng.choice((1, 257)))  # int32 -> mode I
    return img.convert(mode)


def _encode(img: Image.Image, fmt: str) -> bytes:
    if img.mode not in IMAGE_FORMATS[fmt]:
        img = img.convert("RGBA" if fmt in ("PNG", "WEBP") and "A" in img.mode else "RGB")
    buf = io.BytesIO()
    params: dict[str, Any] = {}
    if fmt == "TIFF" and img.mode == "LAB":
        params["compression"] = "raw"
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _exif_orientation(rng: random.Random) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = rng.randint(0, 9)
    return exif.tobytes()


def _claim_huge_png(data: bytes, rng: random.Random) -> bytes:
    """Rewrite a PNG's IHDR to claim huge (or zero) dimensions (CRC left stale unless recomputed)."""
    import zlib

    w = rng.choice((0, 1, 2**15, 2**16, 9000, 2**31 - 1))
    h = rng.choice((0, 1, 2**15, 9000, 2**31 - 1))
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", w, h)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF) if rng.random() < 0.8 else data[29:33]
    return data[:12] + bytes(ihdr) + crc + data[33:]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and b:  # truncate
        return bytes(b[: rng.randrange(len(b))])
    if kind == 1 and b:  # flip bytes
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:  # splice random bytes in
        at = rng.randrange(len(b) + 1)
        return bytes(b[:at]) + rng.randbytes(rng.randint(1, 64)) + bytes(b[at:])
    return rng.randbytes(rng.randint(0, 256))  # noise


def forge_image(rng: random.Random, folder: Path) -> Path:
    """One image file: a valid picture of a random mode and format (about half of the cases), one with an EXIF
    orientation, one claiming huge dimensions, or damaged bytes."""
    fmt = rng.choice(tuple(IMAGE_FORMATS))
    img = random_image(rng)
    kind = rng.random()
    if kind < 0.1 and img.mode in ("L", "RGB"):
        buf = io.BytesIO()
        img.save(buf, format="JPEG" if fmt == "JPEG" else "PNG", exif=_exif_orientation(rng))
        data, fmt = buf.getvalue(), ("JPEG" if fmt == "JPEG" else "PNG")
    else:
        data = _encode(img, fmt)
    if 0.1 <= kind < 0.2:
        data, fmt = _claim_huge_png(_encode(img, "PNG"), rng), "PNG"
    elif kind >= 0.55:
        data = _mutate_bytes(data, rng)
    path = folder / f"img{SUFFIX[fmt]}"
    path.write_bytes(data)
    return path


def check_image(path: Path, channels: int, size: int = 32) -> str:
    from core.errors import ImageError
    from core.files.imageio import load_image

    try:
        t = load_image(path, channels, size)
    except ImageError as exc:
        _one_line(exc)
        return "clean"
    assert tuple(t.shape) == (channels, size, size), t.shape
    assert t.dtype == torch.float32 and bool(torch.isfinite(t).all()) and float(t.abs().max()) <= 1.0
    return "ok"


def _one_line(exc: Exception) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 2000, repr(text[:300])
    assert "Traceback" not in text


# ----- JSON values -----
def nasty_value(rng: random.Random) -> Any:
    return rng.choice([
        0, -1, -5, 1, 2, 3, 7, 64, 256, 1024, 10**6, 10**12, 2**63, -(2**63), 10**400, 1e6, 1.5, float("nan"),
        float("inf"), True, False, None, "", "x" * rng.randint(1, 50), "../../etc", [], [1, 2], {}, {"a": 1}, "1e6",
    ])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=True)


def _mutate_json(data: Any, rng: random.Random, depth: int = 0) -> Any:
    """A random change somewhere in a JSON tree: a value replaced, a key dropped or added."""
    if isinstance(data, (dict, list)) and data and depth < 4 and rng.random() < 0.7:
        is_dict = isinstance(data, dict)
        key = rng.choice(list(data)) if is_dict else rng.randrange(len(data))
        op = rng.random()
        if op < 0.15:
            data.pop(key)
        elif op < (0.25 if is_dict else 0.3):
            _grow(data, rng)
        else:
            data[key] = _mutate_json(data[key], rng, depth + 1)
        return data
    return nasty_value(rng)


def _grow(data: dict | list, rng: random.Random) -> None:
    """A dict gains a stray key (a misspelt one among them); a list repeats its first item, up to 100 times."""
    if isinstance(data, dict):
        data[rng.choice(("bogus", "resolutoin", "dim"))] = nasty_value(rng)
    else:
        data.extend(data[:1] * rng.choice((1, 20, 100)))


def _forge_json_text(data: Any, rng: random.Random) -> str | bytes:
    kind = rng.random()
    if kind < 0.05:
        return nested(rng.choice((100, 1000, 200_000)))
    if kind < 0.08:
        return '{"a": ' * 5000 + "1" + "}" * 5000
    if kind < 0.12:
        return rng.randbytes(rng.randint(0, 200))
    if kind < 0.15:
        return _dumps(data)[: rng.randint(0, 200)]
    return _dumps(_mutate_json(json.loads(json.dumps(data)), rng))


# ----- bundles -----
_FLOAT_TO = (torch.bool, torch.int8, torch.int64, torch.float64, torch.float16, torch.uint8)


def forge_bundle(rng: random.Random, good: Path, folder: Path) -> Path:
    """A bundle folder derived from `good` (a valid tiny bundle): a mutated config.json, mutated tensors, damaged
    bytes, or a special file in place of one of its files."""
    from safetensors.torch import load_file, save_file

    out = folder / "bundle"
    out.mkdir()
    cfg_text = (good / "config.json").read_text()
    weights = (good / "model.safetensors").read_bytes()
    kind = rng.random()
    if kind < 0.5:
        cfg_out: str | bytes = _forge_json_text(json.loads(cfg_text), rng)
        w_out = weights
    elif kind < 0.8:
        cfg_out = cfg_text
        state = load_file(str(good / "model.safetensors"))
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(sorted(state))
            op = rng.random()
            t = state[key]
            if op < 0.3:
                state[key] = t.to(rng.choice(_FLOAT_TO))
            elif op < 0.5:
                state[key] = torch.zeros(*(s + rng.choice((0, 1, 7)) for s in t.shape), rng.randint(1, 3)) \
                    if rng.random() < 0.3 else t.reshape(-1)
            elif op < 0.6:
                state.pop(key)
            elif op < 0.7:
                state["bogus." + key] = t.clone()
            elif op < 0.85:
                t = t.clone()
                t.view(-1)[0] = rng.choice((float("nan"), float("inf")))
                state[key] = t
            else:
                state[key] = torch.zeros((0,))
        buf = folder / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(buf))
        w_out = buf.read_bytes()
    else:
        cfg_out, w_out = cfg_text, _mutate_bytes(weights, rng)
    (out / "config.json").write_bytes(cfg_out if isinstance(cfg_out, bytes) else cfg_out.encode("utf-8", "replace"))
    (out / "model.safetensors").write_bytes(w_out)
    if rng.random() < 0.03:
        _special(rng, out / rng.choice(("config.json", "model.safetensors")))
    return out


def _special(rng: random.Random, path: Path) -> None:
    """Replace `path` by a FIFO, a symlink to /dev/zero or a folder (where the platform has them)."""
    path.unlink()
    kind = rng.randrange(3)
    if kind == 0 and hasattr(os, "mkfifo"):
        os.mkfifo(path)
    elif kind == 1 and os.path.exists("/dev/zero"):
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


def check_bundle(path: Path) -> str:
    from core.errors import BundleError
    from core.files import bundle

    try:
        model = bundle.load(path)
    except BundleError as exc:
        _one_line(exc)
        return "clean"
    assert all(bool(torch.isfinite(p).all()) for p in model.state_dict().values())
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    return "ok"


# ----- projects -----
def _entries(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def _zip(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, payload in entries:
            zf.writestr(info, payload)
    return buf.getvalue()


def rename_model(data: bytes, name: str) -> bytes:
    """A project (bytes) whose manifest names the model `name` (say, one with control characters or a million
    characters long): opened with its own model, it is another model's."""
    entries = []
    for info, payload in _entries(data):
        if info.filename == "manifest.json":
            manifest = json.loads(payload)
            manifest["model"]["name"] = name
            payload = json.dumps(manifest).encode()
        entries.append((info, payload))
    return _zip(entries)


def set_encrypted_flag(data: bytes, name: str) -> bytes:
    """Set bit 0 (encrypted) of `name`'s general-purpose flags in its local and central headers."""
    b = bytearray(data)
    raw = name.encode()
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (at := b.find(sig, start)) >= 0:
            if b[at + name_at: at + name_at + len(raw)] == raw:
                b[at + flag_at] |= 1
            start = at + 4
    return bytes(b)


def forge_project(rng: random.Random, good: bytes, folder: Path) -> Path:
    """A project file derived from `good` (a valid tiny project's bytes): mutated manifest, mutated tensors,
    zip-level damage (encrypted flag, lying sizes, truncation), or a special file in its place."""
    from safetensors.torch import load, save

    path = folder / "p.artflow"
    entries = _entries(good)
    kind = rng.random()
    if kind < 0.45:
        entries = [(i, (_forge_json_text(json.loads(p), rng) if i.filename == "manifest.json" else p))
                   for i, p in entries]
        entries = [(i, p.encode("utf-8", "replace") if isinstance(p, str) else p) for i, p in entries]
        data = _zip(entries)
    elif kind < 0.7:
        new = []
        for info, payload in entries:
            if info.filename == "tensors.safetensors":
                state = load(payload)
                key = rng.choice(sorted(state))
                op = rng.random()
                if op < 0.3:
                    state[key] = state[key].to(rng.choice(_FLOAT_TO))
                elif op < 0.55:
                    state[key] = torch.zeros(rng.randint(1, 5), rng.randint(1, 40))
                elif op < 0.7:
                    state.pop(key)
                elif op < 0.85:
                    t = state[key].clone()
                    t.view(-1)[0] = float("nan")
                    state[key] = t
                else:
                    state["extra." + key] = state[key].clone()
                payload = save({k: v.contiguous() for k, v in state.items()})
            new.append((info, payload))
        data = _zip(new)
    elif kind < 0.8:
        data = set_encrypted_flag(good, rng.choice(("manifest.json", "tensors.safetensors")))
    else:
        data = _mutate_bytes(good, rng)
    path.write_bytes(data)
    if rng.random() < 0.03:
        _special(rng, path)
    return path


def check_project(path: Path, session) -> str:
    """Open like `edit` does (with the model's config) and apply to `session`."""
    from core.errors import ProjectError
    from core.files.project import apply_project, load_project

    try:
        project = load_project(path, session.config)
        if not project.read_only:
            apply_project(session, project)
    except ProjectError as exc:
        _one_line(exc)
        return "clean"
    json.dumps(project.extra, allow_nan=False)  # a save cannot fail late
    for t in project.stage_images():
        assert bool(torch.isfinite(t).all())
    return "ok"


# ----- the valid files every forgery starts from -----
def make_bases(folder: Path):
    """(bundle folder, project bytes, session) of a tiny seeded 32 px model: what the forgers mutate."""
    from core.editing.session import Session
    from core.files import bundle
    from core.files.project import project_from_session, save_project
    from tests.core.engine_util import image, tiny_model

    model = tiny_model(seed=0)
    good_bundle = bundle.save(model, folder / "good-bundle")
    session = Session(model, "cpu")
    session.load_artwork(image(3, seed=1))
    g = torch.Generator().manual_seed(5)
    session.set_layer(1, (image(3, seed=2), torch.rand(1, 32, 32, generator=g)))
    extra = {"variations": [{"stage": 1, "z": [0.5] * 8}], "stage_status": {"flat": "edited"}}
    path = save_project(project_from_session(session, extra), folder / "good.artflow")
    return good_bundle, path.read_bytes(), session
