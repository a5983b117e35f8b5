"""The machine description names the CPU and exactly the SIMD features it lists."""

from __future__ import annotations

from breastseg.machine import cpu_description

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni
"""


def test_cpu_description_names_the_model_and_the_simd_features_listed() -> None:
    assert cpu_description(CPUINFO) == "AMD EPYC 7B13, SIMD: avx2 avx512f avx512_vnni"
    # avx512_bf16 is not avx512f: features are whole words, not substrings
    assert cpu_description("model name : X\nflags : avx512_bf16\n") == "X, SIMD: avx512_bf16"
    assert cpu_description("") == "?, SIMD: none listed"


def test_machine_info_without_torch_reads_the_cpu_and_this_process_cores() -> None:
    import os

    from breastseg.machine import machine_info

    m = machine_info(with_torch=False, cpuinfo=CPUINFO)
    assert m.cpu == "AMD EPYC 7B13" and m.simd == ("avx2", "avx512f", "avx512_vnni")
    assert m.cores == len(os.sched_getaffinity(0))
    assert m.torch_cpu_capability is None and m.auto_precision is None
    assert m.versions["breastseg"] and "numpy" in m.versions


def test_onednn_version_is_read_from_torch_build_text() -> None:
    from breastseg.machine import _onednn_version

    text = "PyTorch built with:\n  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n  - OpenMP 201511\n"
    assert _onednn_version(text) == "3.12.0"
    assert _onednn_version("PyTorch built with:\n  - OpenMP 201511\n") is None


def _info_json(env: dict[str, str]) -> dict:
    import json
    import os
    import subprocess
    import sys

    from breastseg.machine import OVERRIDES

    code = "from breastseg.cli.main import main; raise SystemExit(main(['info', '--json']))"
    # only the overrides this test sets (the suite's workers set thread counts of their own)
    base = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    run = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_info_says_what_auto_precision_runs_by_the_cpu_flags() -> None:
    from pathlib import Path

    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    doc = _info_json({})
    # bfloat16 is native exactly where the CPU lists AVX-512 BF16 or AMX (oneDNN's check against the kernel's flags)
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert doc["native_bfloat16"] is native and doc["auto_precision"] == ("bfloat16" if native else "float32")
    assert doc["cores"] >= 1 and doc["versions"]["torch"] and doc["onednn"]


def test_info_under_an_avx2_restriction_reports_avx2_kernels_and_float32() -> None:
    """ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA make torch behave as on an AVX2-only CPU; info must say so, and
    --precision auto must then not choose an emulated bfloat16."""
    import pytest

    from breastseg.machine import cpu_description

    if "avx2" not in cpu_description():
        pytest.skip("this CPU has no AVX2")
    doc = _info_json({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert doc["torch_cpu_capability"] == "AVX2"
    assert doc["native_bfloat16"] is False and doc["auto_precision"] == "float32"
    assert doc["overrides"] == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
