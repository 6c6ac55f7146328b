"""Reviewing one image: the canvas, the editing tools, the review and history panels, the image list."""
