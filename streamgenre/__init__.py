"""streamgenre: streaming, real-time music genre classification.

The package is organised as one module per pipeline stage (ring buffer, resampler,
mel front end, model, smoother, ...). Importing it configures numba's on-disk cache
so that jitted kernels compile once per machine, not once per process.
"""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def _configure_numba_cache() -> None:
    """Point ``NUMBA_CACHE_DIR`` at a writable place when the package dir is not.

    Must run before numba is imported anywhere, hence here in the package root.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    package_dir = Path(__file__).resolve().parent
    if os.access(package_dir, os.W_OK):
        return  # numba's default __pycache__ next to the sources works
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ["NUMBA_CACHE_DIR"] = str(cache_root / "streamgenre" / "numba")


_configure_numba_cache()
