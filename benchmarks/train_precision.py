"""Training step time in float32 and under bfloat16 autocast (``TrainConfig.precision``), per network.

One optimiser step (forward, Dice + cross-entropy, backward, AdamW) on a batch of 16 random 192 × 192 one-channel
images — the ultrasound workflow's setting — repeated; prints the median seconds per step and the speed-up of
bfloat16 over float32 (the peer, measured in the same run). bfloat16 pays only where the CPU computes it
natively (AVX-512 BF16 / AMX; ``breastseg.predict.device.native_bfloat16``); elsewhere it is emulated and slower.

Run: ``.venv/bin/python benchmarks/train_precision.py``
"""

from __future__ import annotations

import statistics
import time

import torch

from breastseg.learn.losses import dice_ce_loss
from breastseg.machine import print_header
from breastseg.nets import NetConfig, ResUNetConfig, TorchvisionSegConfig
from breastseg.predict.device import native_bfloat16

NETS: dict[str, NetConfig] = {
    "resunet d5 c16": ResUNetConfig(in_channels=1, depth=5, first_channels=16),
    "deeplabv3_mobilenet_v3_large": TorchvisionSegConfig("deeplabv3_mobilenet_v3_large"),
}


def step_seconds(config: NetConfig, bfloat16: bool, repeats: int = 5) -> float:
    torch.manual_seed(0)
    net = config.build().train()
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = dice_ce_loss()
    x = torch.rand(16, 1, 192, 192)
    y = (torch.rand(16, 1, 192, 192) > 0.8).long()
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    print_header(__doc__ or "train_precision")
    print(f"native bfloat16 on this CPU: {native_bfloat16(torch.device('cpu'))}; threads {torch.get_num_threads()}")
    print("| network | float32 s/step | bfloat16 s/step | speed-up |")
    print("|---|---|---|---|")
    for name, config in NETS.items():
        fp32, bf16 = step_seconds(config, False), step_seconds(config, True)
        print(f"| {name} | {fp32:.2f} | {bf16:.2f} | {fp32 / bf16:.2f}× |")


if __name__ == "__main__":
    main()
