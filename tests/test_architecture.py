"""The engine and the app's core must run headless: no Qt in model_core or retina_desktop.core, checked two ways; the
layers, and the window's features independent of each other (import-linter's contracts in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a test dependency"
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("The engine never imports Qt", "The app's core never imports Qt",
                 "The views sit on the core, the core on the engine",
                 "The window's features are independent of each other",
                 "Only the composition root knows the app and its features", "The features never import the app"):
        assert f"{name} KEPT" in proc.stdout, proc.stdout


def _qt_free_import(package: str, forbidden: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Import every module of ``package`` in a fresh interpreter; exit 1 if any ``forbidden`` top-level got loaded."""
    code = (
        f"import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        f"for m in pkgutil.walk_packages(pkg.__path__, {package!r} + '.'):\n"
        f"    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {forbidden!r}]\n"
        f"print(bad); sys.exit(1 if bad else 0)\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_importing_every_engine_module_loads_no_qt():
    proc = _qt_free_import("model_core", ("PySide6", "shiboken6", "pyqtgraph", "retina_desktop"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_importing_every_core_module_loads_no_qt():
    proc = _qt_free_import("retina_desktop.core", ("PySide6", "shiboken6", "pyqtgraph"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
