"""Retina vessel segmentation engine: preprocessing, Attention U-Net, training, prediction.

This package never imports Qt (enforced by the import-linter contract in pyproject.toml), so it runs
headless on workstations and clusters as well as inside the desktop app.
"""

__version__ = "0.1.0"
