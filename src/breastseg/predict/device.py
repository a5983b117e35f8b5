"""Where and how networks run: the device (CPU or CUDA) and the arithmetic (float32 or bfloat16).

Every workflow resolves its ``--device`` and ``--precision`` options here. This module imports torch only when a
function runs, so a command can read and preprocess its images while the network stack loads in the background.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from breastseg.errors import InputError

if TYPE_CHECKING:
    import torch


class Precision(StrEnum):
    """The arithmetic networks run in (``--precision``): float32, or bfloat16 (autocast; native on AVX-512 BF16,
    AMX and recent GPUs, emulated and slower elsewhere)."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA: Ampere or newer; CPU: oneDNN's AVX-512 BF16 / AMX
    check). Emulated bfloat16 is slower than float32, so ``precision="auto"`` uses it only where this holds."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA device when one is present, else the CPU; other names as torch reads them."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device {device!r}: not a torch device name (auto, cpu, cuda, cuda:N)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: this machine has no CUDA GPU; use --device cpu or auto")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """``auto`` → bfloat16 where ``device`` computes it natively, else float32."""
    if precision == "auto":
        return Precision.BFLOAT16 if native_bfloat16(device) else Precision.FLOAT32
    try:
        return Precision(precision)
    except ValueError:
        raise InputError(f"precision {str(precision)!r}: use auto, float32 or bfloat16") from None
