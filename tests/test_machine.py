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
