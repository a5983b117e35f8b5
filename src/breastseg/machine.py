"""What machine this is, in the words every timing should carry: the CPU model, its SIMD features, and what the
network stack makes of them (``breastseg info``).

Speed depends on more than the CPU's name: PyTorch picks its kernels by the instruction set it finds (or is told:
``ATEN_CPU_CAPABILITY``), oneDNN its convolutions by the ISA it may use (``ONEDNN_MAX_CPU_ISA``), and bfloat16 is
fast only where the CPU computes it natively (AVX-512 BF16, AMX) — elsewhere it is emulated and slower than float32.
:func:`machine_info` reports all of it, so that a figure measured here can be compared with one measured elsewhere.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

#: the SIMD features that change what runs fast here (int8 needs VNNI to be fast, bfloat16 AVX-512 BF16 or AMX)
SIMD_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: environment variables that change which instructions the numeric libraries use (or how many threads)
OVERRIDES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: libraries whose versions a timing depends on
LIBRARIES = ("numpy", "scipy", "SimpleITK", "torch", "monai", "onnxruntime", "openvino")


def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if platform.system() == "Linux" and path.exists() else ""


def _cpu_model_and_simd(cpuinfo: str) -> tuple[str, tuple[str, ...]]:
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "?")
    return model, tuple(f for f in SIMD_FEATURES if f in flags)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity; the machine may have more)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def cpu_description(cpuinfo: str | None = None) -> str:
    """``"<model name>, SIMD: avx2 …"`` from ``/proc/cpuinfo`` (or the given text); ``"?"`` parts where unknown
    (not Linux)."""
    model, simd = _cpu_model_and_simd(_cpuinfo() if cpuinfo is None else cpuinfo)
    return f"{model}, SIMD: {' '.join(simd) or 'none listed'}"


@dataclass(frozen=True)
class MachineInfo:
    """The machine and the numeric stack, as :func:`machine_info` found them.

    Attributes:
        cpu: the CPU's model name (``"?"`` where the system does not say).
        cores: CPU cores this process may run on (its affinity; the machine may have more).
        simd: which of :data:`SIMD_FEATURES` the CPU lists.
        torch_cpu_capability: the instruction set PyTorch's own kernels use (``AVX512``, ``AVX2``, ``DEFAULT``);
            ``None`` without torch.
        onednn: the oneDNN version PyTorch's convolutions run on; ``None`` without it.
        torch_threads: PyTorch's intra-op threads.
        native_bfloat16: whether the CPU computes bfloat16 natively as oneDNN sees it (what ``--precision auto``
            follows); ``None`` without torch.
        cuda: the CUDA devices' names (empty without a GPU).
        overrides: the :data:`OVERRIDES` set in the environment, with their values.
        versions: Python's, breastseg's and :data:`LIBRARIES`' versions (installed ones only).
    """

    cpu: str
    cores: int
    simd: tuple[str, ...]
    torch_cpu_capability: str | None = None
    onednn: str | None = None
    torch_threads: int | None = None
    native_bfloat16: bool | None = None
    cuda: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def auto_precision(self) -> str | None:
        """What ``--precision auto`` runs on the CPU here (``None`` without torch)."""
        if self.native_bfloat16 is None:
            return None
        return "bfloat16" if self.native_bfloat16 else "float32"

    def summary(self) -> str:
        """One line for a benchmark's header: CPU, cores, SIMD, what torch uses of it, auto precision."""
        parts = [f"{self.cpu}, {self.cores} cores, SIMD: {' '.join(self.simd) or 'none listed'}"]
        if self.torch_cpu_capability is not None:
            parts.append(f"torch {self.versions.get('torch', '?')} kernels {self.torch_cpu_capability}")
        if self.onednn:
            parts.append(f"oneDNN {self.onednn}")
        if self.auto_precision is not None:
            parts.append(f"--precision auto → {self.auto_precision}")
        if self.cuda:
            parts.append(f"CUDA: {', '.join(self.cuda)}")
        parts += [f"{k}={v}" for k, v in self.overrides.items()]
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "auto_precision": self.auto_precision}


def _onednn_version(config: str) -> str | None:
    """The oneDNN (MKL-DNN) version in ``torch.__config__.show()``'s text, e.g. ``"3.12.0"``."""
    for line in config.splitlines():
        if "MKL-DNN" in line or "oneDNN" in line:
            for word in line.split():
                if word.startswith("v") and word[1:2].isdigit():
                    return word[1:]
    return None


def _versions() -> dict[str, str]:
    from breastseg._version import __version__

    found = {"python": platform.python_version(), "breastseg": __version__}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_info(with_torch: bool = True, cpuinfo: str | None = None) -> MachineInfo:
    """Describe this machine; ``with_torch`` imports torch (seconds) to say what it makes of the CPU."""
    model, simd = _cpu_model_and_simd(_cpuinfo() if cpuinfo is None else cpuinfo)
    cores = usable_cores()
    overrides = {k: os.environ[k] for k in OVERRIDES if k in os.environ}
    info = MachineInfo(model, cores, simd, overrides=overrides, versions=_versions())
    if not with_torch or "torch" not in info.versions:
        return info
    import torch

    from breastseg.predict.device import native_bfloat16

    cuda = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return MachineInfo(
        model,
        cores,
        simd,
        torch_cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
        onednn=_onednn_version(torch.__config__.show()) if torch.backends.mkldnn.is_available() else None,
        torch_threads=torch.get_num_threads(),
        native_bfloat16=native_bfloat16(torch.device("cpu")),
        cuda=cuda,
        overrides=overrides,
        versions=info.versions,
    )


def print_header(what: str, out: Any = sys.stdout) -> MachineInfo:
    """Print a benchmark's first lines: what it measures (the first line of ``what``, e.g. the script's
    docstring) and :meth:`MachineInfo.summary` of this machine."""
    info = machine_info()
    print(f"# {what.strip().splitlines()[0]}", file=out)
    print(f"# machine: {info.summary()}", file=out, flush=True)
    return info
