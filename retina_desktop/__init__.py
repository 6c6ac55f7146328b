"""Retina Desktop: review, correct and save retinal vessel segmentations.

The GUI layer. Qt-free parts (workspace, mask document, painting, export, measurements) sit beside
the Qt views so they can be tested and reused without a display; the engine lives in ``model_core``.
"""

__version__ = "0.1.0"
APP_NAME = "Retina Desktop"
ORG_NAME = "RetinaDesktop"
