from __future__ import annotations

import os

# Qt runs headless in tests; a developer with a display can still override this.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

# The test models are tiny: one thread is as fast, and avoids OpenMP spin-waiting against other work on the machine.
torch.set_num_threads(1)
