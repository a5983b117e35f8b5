"""What machine this is, in the words every timing should carry: the CPU model and its SIMD features."""

from __future__ import annotations

import platform
from pathlib import Path

#: the SIMD features that change what runs fast here (bfloat16 needs AVX-512 BF16 or AMX)
SIMD_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_description(cpuinfo: str | None = None) -> str:
    """``"<model name>, SIMD: avx2 …"`` from ``/proc/cpuinfo`` (or the given text); ``"?"`` parts where unknown
    (not Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if platform.system() == "Linux" and path.exists() else ""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    simd = [f for f in SIMD_FEATURES if f in flags]
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "?")
    return f"{model}, SIMD: {' '.join(simd) or 'none listed'}"
