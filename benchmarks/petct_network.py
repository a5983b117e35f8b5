"""PET/CT lesion network: time per training step and per whole-body sliding-window prediction, CPU or GPU, and a
short training check on synthetic volumes through the project's trainer.

Step: forward, Dice + cross-entropy, backward and Adam on a batch of 2 two-channel patches (the recipe's), for the
nnU-Net-planned DynUNet at each patch size and first-level width, in float32 and under bfloat16 autocast (the
peer: the ratio is bfloat16's speed-up in the same run). Prediction: Gaussian sliding windows (overlap 0.5) over
a 150 × 70 × 100 volume (the 4 mm whole-body phantom's PET grid). Check (``--check``): 40 synthetic volumes of
hot spheres, the trainer on ``--device``, validation Dice per epoch.

Run: ``.venv/bin/python benchmarks/petct_network.py [--device cuda] [--check]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from breastseg.learn.losses import dice_ce_loss
from breastseg.machine import print_header
from breastseg.nets import plan_dynunet
from breastseg.predict.sliding import predict_sliding

WHOLE_BODY = (150, 70, 100)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(patch: int, filters: int, bfloat16: bool, device: torch.device, repeats: int) -> float:
    torch.manual_seed(0)
    net = plan_dynunet((patch,) * 3, (4.0, 4.0, 4.0), 2, filters).build().to(device).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-4)
    loss_fn = dice_ce_loss()
    x = torch.rand(2, 2, patch, patch, patch, device=device)
    y = (torch.rand(2, 1, patch, patch, patch, device=device) > 0.9).long()
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def predict_seconds(patch: int, filters: int, bfloat16: bool, device: torch.device) -> float:
    net = plan_dynunet((patch,) * 3, (4.0, 4.0, 4.0), 2, filters).build().to(device).eval()
    volume = np.random.default_rng(0).random((2, *WHOLE_BODY), dtype=np.float32)
    precision = "bfloat16" if bfloat16 else "float32"
    predict_sliding([net], volume, (patch,) * 3, precision=precision)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    predict_sliding([net], volume, (patch,) * 3, precision=precision)
    _sync(device)
    return time.perf_counter() - t0


def training_check(device: str, epochs: int) -> list[float]:
    """Validation Dice per epoch of a small DynUNet trained on synthetic hot spheres (2 channels)."""
    from breastseg.learn.patches import PatchConfig
    from breastseg.learn.trainer import TrainConfig, TrainImage, train

    def volume(seed: int) -> TrainImage:
        rng = np.random.default_rng(seed)
        z, y, x = np.mgrid[:48, :40, :48]
        label = np.zeros((48, 40, 48), np.int64)
        for _ in range(3):
            c, r = rng.uniform([6, 6, 6], [42, 34, 42]), rng.uniform(2.5, 5)
            label[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r**2] = 1
        pet = np.where(label == 1, 4.0, 1.0) + rng.normal(0, 0.4, label.shape)
        ct = rng.normal(0, 1, label.shape)
        return TrainImage(f"s{seed}", np.stack([pet, ct]).astype(np.float32), label, np.ones(label.shape, bool))

    images = [volume(i) for i in range(40)]
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=2,
        learning_rate=1e-3,
        optimiser="adam",
        loss="dice_ce",
        schedule="poly",
        precision="bfloat16" if device != "cpu" else "float32",
        patch=PatchConfig(size=32, per_image=4, positive_bias=0.33),
    )
    net = plan_dynunet((32, 32, 32), (4.0, 4.0, 4.0), 2, 16)
    result = train(net, images[:32], images[32:], cfg, show_progress=False, device=device)
    return [round(h["validation_dice"], 3) for h in result.history]


def main() -> None:
    print_header(__doc__ or "petct_network")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--patch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--filters", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="also train on synthetic volumes and print the Dice")
    parser.add_argument("--check-epochs", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"{'patch':>6} {'filters':>7} {'params':>9} | {'step fp32 s':>11} {'step bf16 s':>11} {'bf16 ×':>6} | "
        f"{'predict fp32 s':>14} {'predict bf16 s':>14}"
    )
    for patch in args.patch:
        for filters in args.filters:
            params = sum(p.numel() for p in plan_dynunet((patch,) * 3, (4.0,) * 3, 2, filters).build().parameters())
            fp32 = step_seconds(patch, filters, False, device, args.repeats)
            bf16 = step_seconds(patch, filters, True, device, args.repeats)
            p32 = predict_seconds(patch, filters, False, device)
            p16 = predict_seconds(patch, filters, True, device)
            print(
                f"{patch:>6} {filters:>7} {params:>9,} | {fp32:>11.3f} {bf16:>11.3f} {fp32 / bf16:>6.2f} | "
                f"{p32:>14.2f} {p16:>14.2f}"
            )
    if args.check:
        t0 = time.perf_counter()
        dice = training_check(args.device, args.check_epochs)
        print(f"training check on {args.device}: validation Dice per epoch {dice} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
