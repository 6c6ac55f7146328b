"""Imports made late (on first use, to keep start-up short) and possibly from several worker threads at once.

scikit-image loads its submodules lazily. Two threads importing them at the same time can each hold a module
lock the other needs; Python then breaks the deadlock by handing one of them a partially initialised module
("partially initialized module 'skimage.morphology' has no attribute 'skeletonize'"), seen in the app when the
vessel analysis and the trace's cost map started together. One lock for every late import in this code
serialises them.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

_LOCK = threading.RLock()


def late_import(name: str) -> ModuleType:
    """``importlib.import_module(name)``, one late import at a time."""
    with _LOCK:
        return importlib.import_module(name)
