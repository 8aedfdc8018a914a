from __future__ import annotations

import os

# Qt runs headless in tests; a developer with a display can still override this.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")
