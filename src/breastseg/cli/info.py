"""``breastseg info``: the machine and the numeric stack, as every timing should name them."""

from __future__ import annotations

import json

import click


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(as_json: bool) -> None:
    """What this machine is and what the network stack makes of it: CPU model, usable cores, the SIMD features
    that decide speed (AVX2, AVX-512, VNNI, BF16, AMX), PyTorch's kernel instruction set, oneDNN, whether
    bfloat16 is native (what --precision auto follows), CUDA devices, and the library versions.

    \b
    Quote it with every timing: a figure measured with AVX-512 BF16 does not hold on an AVX2-only CPU.
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 make PyTorch behave as on such a CPU (shown when set).

    \b
    Example:
      breastseg info
      breastseg info --json > machine.json
    """
    from breastseg.machine import machine_info

    m = machine_info()
    if as_json:
        click.echo(json.dumps(m.to_json(), indent=2))
        return
    rows = [
        ("CPU", m.cpu),
        ("cores (usable)", str(m.cores)),
        ("SIMD", " ".join(m.simd) or "none listed"),
        ("torch kernels", m.torch_cpu_capability or "— (torch not installed)"),
        ("oneDNN", m.onednn or "—"),
        ("torch threads", "—" if m.torch_threads is None else str(m.torch_threads)),
        ("bfloat16 native", {True: "yes", False: "no (emulated: slower than float32)", None: "—"}[m.native_bfloat16]),
        ("--precision auto", m.auto_precision or "—"),
        ("CUDA", ", ".join(m.cuda) or "none"),
    ]
    rows += [(f"env {k}", v) for k, v in m.overrides.items()]
    rows += [(name, version) for name, version in m.versions.items()]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
