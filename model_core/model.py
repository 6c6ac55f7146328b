"""Attention U-Net (Oktay et al., 2018): a U-Net whose skip connections pass through additive attention gates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, tuple[int, ...]] = {
    # The reference notebook's network: 64-128-256-512 with a 1024 bottleneck (~31 M parameters).
    "reference": (64, 128, 256, 512, 1024),
    # CPU presets: the same topology, narrower.
    "base": (16, 32, 64, 128, 256),
    "small": (12, 24, 48, 96, 192),
    "tiny": (8, 16, 32, 64),
    # For tests only.
    "micro": (4, 8, 16),
}


INPUT_CHANNELS = (1, 4)  # a vessel model's, an artery/vein network's


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = PRESETS["base"]
    in_channels: int = 1
    out_channels: int = 1

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {self.widths}")
        # The vessel pipeline feeds one channel (green, CLAHE); the artery/vein network (model_core.av_net) four
        # (colour and the vessel mask). Both write one map.
        if self.in_channels not in INPUT_CHANNELS or self.out_channels != 1:
            raise ValueError(
                f"the model must read {' or '.join(map(str, INPUT_CHANNELS))} channels and write 1, "
                f"got {self.in_channels} and {self.out_channels}"
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @property
    def depth(self) -> int:
        """Number of 2x down-samplings; inputs are padded to a multiple of ``2**depth``."""
        return len(self.widths) - 1

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        try:
            return cls(widths=PRESETS[name])
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "in_channels": self.in_channels, "out_channels": self.out_channels}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(
            widths=tuple(d["widths"]),
            in_channels=int(d.get("in_channels", 1)),
            out_channels=int(d.get("out_channels", 1)),
        )


class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UpConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class AttentionGate(nn.Module):
    """Additive attention: the decoder signal ``g`` decides which skip features ``x`` pass."""

    def __init__(self, g_channels: int, x_channels: int, inter_channels: int):
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv2d(g_channels, inter_channels, 1, bias=False), nn.BatchNorm2d(inter_channels))
        self.w_x = nn.Sequential(nn.Conv2d(x_channels, inter_channels, 1, bias=False), nn.BatchNorm2d(inter_channels))
        self.psi = nn.Sequential(nn.Conv2d(inter_channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        gated: torch.Tensor = x * self.psi(self.relu(self.w_g(g) + self.w_x(x)))
        return gated


class AttentionUNet(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        w = config.widths
        self.encoders = nn.ModuleList(
            [ConvBlock(config.in_channels, w[0]), *(ConvBlock(w[i - 1], w[i]) for i in range(1, len(w)))]
        )
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(len(w) - 1, 0, -1):
            self.ups.append(UpConv(w[i], w[i - 1]))
            self.gates.append(AttentionGate(w[i - 1], w[i - 1], max(1, w[i - 1] // 2)))
            self.decoders.append(ConvBlock(2 * w[i - 1], w[i - 1]))
        self.head = nn.Conv2d(w[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, gate, dec in zip(self.ups, self.gates, self.decoders, strict=True):
            skip = skips.pop()
            g = up(x)
            x = dec(torch.cat([gate(g, skip), g], dim=1))
        logits: torch.Tensor = self.head(x)
        return logits


def pad_to_multiple(t: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (N, C, H, W) on the bottom/right to a multiple of ``multiple`` (the network halves the size
    ``depth`` times). Reflection keeps vessels continuous at the border; tiny inputs, which reflection
    cannot pad, are replicated. Callers crop the output back to (H, W)."""
    h, w = t.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return t
    return F.pad(t, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def to_fast_layout(model: nn.Module) -> nn.Module:
    """The model in channels-last memory layout, in place. On this project's 2-core CPU the forward of the bundled
    model at a DRIVE photo's size takes 0.52 of its time in the default layout (oneDNN convolutions without
    reorders), a training step 0.78 (benchmarks/bench_forward.py); on CUDA it suits mixed precision."""
    moved: nn.Module = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return moved


def build_model(config: ModelConfig) -> AttentionUNet:
    return AttentionUNet(config)


def unwrap(model: nn.Module) -> AttentionUNet:
    """The network inside ``model``: DistributedDataParallel and AveragedModel hold it as ``.module``."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, AttentionUNet):
        raise TypeError(f"expected an AttentionUNet, got {type(inner).__name__}")
    return inner


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
