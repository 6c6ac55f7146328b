"""The engine and the app's core must run headless: no Qt in model_core or retina_desktop.core, checked two ways; the
layers, and the window's features independent of each other (import-linter's contracts in pyproject.toml)."""

import ast
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
    for name in (
        "The engine never imports Qt",
        "The app's core never imports Qt",
        "The views sit on the core, the core on the engine",
        "The window's features are independent of each other",
        "Only the composition root knows the app and its features",
        "The features never import the app",
    ):
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


def test_importing_the_window_loads_neither_torch_nor_scipy():
    """torch (1.3 s) and scipy (0.2 s) load on first use, in a worker, never on the window's start-up path:
    a later launch shows the cached prediction without them."""
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import retina_desktop.ui.app.main_window\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy'})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- the window is no service locator --
UI = ROOT / "retina_desktop" / "ui"
# Every feature is built from its parts (none uses ``install_*(window)`` or ``self.window.<attr>``); this stays empty.
WINDOW_USERS_LEFT: set[str] = set()


def _window_uses(path: Path) -> list[str]:
    """Where ``path`` takes a parameter named ``window`` or reads ``window.<attr>`` / ``<x>.window.<attr>``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            found += [
                f"line {node.lineno}: parameter window"
                for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs)
                if arg.arg == "window"
            ]
        elif isinstance(node, ast.Attribute):
            v = node.value
            if (isinstance(v, ast.Name) and v.id == "window") or (isinstance(v, ast.Attribute) and v.attr == "window"):
                found.append(f"line {node.lineno}: reads window.{node.attr}")
    return found


def test_no_feature_takes_or_reads_the_window():
    """Only ui/app (the composition root) knows the window; a feature takes the parts it uses."""
    offenders, converted = [], []
    for path in sorted(UI.rglob("*.py")):
        rel = path.relative_to(UI).as_posix()
        if rel.startswith("app/"):
            continue
        uses = _window_uses(path)
        if uses and rel not in WINDOW_USERS_LEFT:
            offenders.append(f"{rel}: " + "; ".join(uses[:5]))
        elif not uses and rel in WINDOW_USERS_LEFT:
            converted.append(rel)
    assert not offenders, "\n".join(offenders)
    assert not converted, f"no longer uses the window, take it off WINDOW_USERS_LEFT: {converted}"


def test_the_window_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def install(window):\n    window.show_message('x')\n\n"
        "class A:\n    def f(self):\n        return self.window.session\n\n"
        "def fine(review, canvas):\n    return review.image, canvas.window_size\n"
    )
    assert _window_uses(sample) == [
        "line 1: parameter window",
        "line 2: reads window.show_message",
        "line 6: reads window.session",
    ]


# ----------------------------------------------------------------------------------- sizes --
MAX_CLASS_LINES, MAX_FUNCTION_LINES, MAX_MAIN_WINDOW_LINES = 300, 60, 250
# What is over the limits, at its size (it may shrink, not grow); empty now, and it stays empty.
OVERSIZE_LEFT: dict[str, int] = {}


def _sizes(path: Path):
    """(qualified name, is a class, lines) of every class and function of ``path``."""

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, isinstance(child, ast.ClassDef), child.end_lineno - child.lineno + 1
                yield from walk(child, name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), "")


def test_classes_and_functions_stay_small():
    too_big, shrunk = [], []
    for package in ("core", "ui"):
        for path in sorted((ROOT / "retina_desktop" / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for name, is_class, lines in _sizes(path):
                limit = MAX_CLASS_LINES if is_class else MAX_FUNCTION_LINES
                if name == "MainWindow":
                    limit = MAX_MAIN_WINDOW_LINES
                key = f"{rel}:{name}"
                allowed = max(limit, OVERSIZE_LEFT.get(key, 0))
                if lines > allowed:
                    too_big.append(f"{key}: {lines} lines (at most {allowed})")
                elif key in OVERSIZE_LEFT and lines <= limit:
                    shrunk.append(key)
    assert not too_big, "\n".join(too_big)
    assert not shrunk, f"within the limit now, take off OVERSIZE_LEFT: {shrunk}"
