"""The app's Qt-free core: workspace records, review logic, mask editing, tasks and the model service.

Nothing here imports PySide6 or pyqtgraph (an import-linter contract in pyproject.toml checks it), so
all of it runs and is tested headless.
"""
