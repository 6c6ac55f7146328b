"""Device choice: CUDA when present, else Apple MPS, else CPU."""

from __future__ import annotations

import torch

from .errors import RetinaInputError


def select_device(preferred: str | None = None) -> torch.device:
    """The device to run on: ``preferred`` when given (refused with a one-line error when this machine lacks
    it), otherwise the best one present."""
    if preferred and preferred != "auto":
        try:
            dev = torch.device(preferred)
        except RuntimeError:
            raise RetinaInputError(None, f"device {preferred!r} is not one of cpu, cuda, cuda:N, mps") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RetinaInputError(None, f"device {preferred!r}: this machine has no CUDA GPU that PyTorch can use")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            gpus = torch.cuda.device_count()
            raise RetinaInputError(None, f"device {preferred!r}: this machine has {gpus} CUDA GPU(s)")
        if dev.type == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise RetinaInputError(
                    None, f"device {preferred!r}: this machine has no Apple GPU that PyTorch can use"
                )
        elif dev.type not in ("cpu", "cuda"):
            raise RetinaInputError(None, f"device {preferred!r} is not one of cpu, cuda, cuda:N, mps")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"
