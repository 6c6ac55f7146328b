"""Reviewing one image: the open mask and its undo, the review state machine, comparison with a reference, export."""
