"""`artflow info`: a model bundle's facts and the compute device, as JSON."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_common, model_path
from core.files import bundle
from core.platform.device import device_label, resolve_device


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a model bundle and the compute device")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = model_path(args)
    facts = bundle.describe(path)
    facts["path"] = str(path)
    facts["device"] = device_label(resolve_device(args.device))
    facts["bundled_models"] = {m.name: m.description for m in bundle.bundled_models()}
    print(json.dumps(facts, indent=2))
    return 0
