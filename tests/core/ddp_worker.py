"""Run by tests/core/test_train.py under torchrun: a few steps of every phase on a tiny model, then each rank
writes its weights so the test can check they stayed identical."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core import config  # noqa: E402
from core.train.config import quick  # noqa: E402
from core.train.data import StageBank  # noqa: E402
from core.train.trainer import Trainer  # noqa: E402

if __name__ == "__main__":
    data, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    bank = StageBank.from_folder(data, 32, [1, 3, 3], progress=False)
    trainer = Trainer(config.tiny(), quick(3), bank, out, device="cpu", progress=False)
    trainer.run()
    rank = int(os.environ["RANK"])
    state = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(state, str(out / f"rank{rank}.safetensors"))
