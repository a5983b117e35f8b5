"""One student network that reproduces the ResU-Net ensemble's probability: the study's 25 members for the price of
one.

The study's margin ensemble runs 25 networks along three axes; on a CPU without bfloat16 that is most of a minute.
Knowledge distillation (Hinton et al. 2015) trains one network to output what the ensemble outputs: the teacher is
the ensemble's exact path (every member, every slice, float32), its target the members' mean tumour probability of
each slice along each axis — so that the student, run tri-planar like a member, reproduces the ensemble's tri-planar
average. Training needs no labels, only specimens (unlabelled scans of the kind the model will see); the student
is stored in the ensemble's bundle beside the members (:class:`~breastseg.workflows.specimen.bundle.ModelBundle`),
so one file holds the fast path and the exact one.

* **Targets**: per axis, the mean over members of the softmax tumour probability on the model grid
  (:func:`~breastseg.workflows.specimen.inference.predict_members` with one axis at a time).
* **Student**: a Residual U-Net like the members (``depth``, ``first_channels``), the first member's input
  normalisation.
* **Training**: batches of whole slices along all three axes (:class:`SliceSampler`), ``boundary_fraction`` of them
  holding a pixel where the teacher is uncertain (0.02 < p < 0.98: the boundary, where the mask and the margin are
  decided); soft-target binary cross-entropy on the student's tumour logit, Adam with poly decay over ``steps``.
* **Leakage**: the student saw what every member saw, so its training patients are the union of theirs; a
  patient any member knows excludes the student (the exact path then runs, without that patient's members).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from breastseg.errors import InputError
from breastseg.predict.device import Precision
from breastseg.workflows.specimen.inference import REFERENCE, ModelInputs, model_inputs, predict_members

if TYPE_CHECKING:
    from breastseg.image import Image
    from breastseg.workflows.specimen.bundle import BundleMember, EnsembleNet, ModelBundle
    from breastseg.workflows.specimen.normalisation import Normalisation

#: teacher probabilities inside this open interval are "uncertain": where boundary patches are centred
UNCERTAIN = (0.02, 0.98)


@dataclass(frozen=True)
class DistilConfig:
    """The student and its training (defaults: a CPU-sized student; see the module docstring)."""

    depth: int = 4
    first_channels: int = 16
    batch_size: int = 8
    steps: int = 2000
    learning_rate: float = 2e-3
    boundary_fraction: float = 0.6
    seed: int = 0
    precision: Precision = Precision.FLOAT32


@dataclass(eq=False)
class TeacherVolume:
    """One specimen on the model grid: the student's input channels ``(C, z, y, x)``, the tissue, and the teacher's
    mean probability along each axis ``(3, z, y, x)`` (index a: the slices along array axis a)."""

    channels: np.ndarray
    tissue: np.ndarray
    teacher: np.ndarray


def teacher_volume(
    ensemble: Sequence[EnsembleNet], inputs: ModelInputs, normalisation: Normalisation, device: str = "auto"
) -> TeacherVolume:
    """The teacher's targets on one specimen (the exact path, one axis at a time)."""
    per_axis = []
    for axis in (0, 1, 2):
        inference = dataclasses.replace(REFERENCE, axes=(axis,), device=device)
        members = predict_members(ensemble, inputs, inference)
        per_axis.append(np.mean(members, axis=0, dtype=np.float32))
    return TeacherVolume(inputs.channels(normalisation), inputs.tissue, np.stack(per_axis).astype(np.float32))


def teacher_volumes(
    bundle: ModelBundle, specimens: Iterable[tuple[Image, Image, np.ndarray]], device: str = "auto"
) -> list[TeacherVolume]:
    """Targets of every preprocessed specimen ``(ct, pet, tissue)`` (CT in HU, PET in SUL, on the CT's grid; an
    iterable, so that specimens can be read one at a time); the members are built once."""
    ensemble = bundle.ensemble()
    normalisation = bundle.member_normalisation(bundle.members[0])
    return [
        teacher_volume(ensemble, model_inputs(ct, pet, tissue, bundle.pixel_spacing_mm), normalisation, device)
        for ct, pet, tissue in specimens
    ]


class SliceSampler:
    """Random training batches of whole slices, as inference sees them: one volume and axis per batch (so the
    slices share a shape), zero-padded to the network's size multiple like
    :func:`~breastseg.predict.slices.predict_batch`; slices with an uncertain teacher pixel are drawn with
    probability ``boundary_fraction``. Whole slices, not patches, because instance normalisation makes a network's
    output depend on the extent of its input: the teacher's targets are its whole-slice outputs."""

    def __init__(self, volumes: Sequence[TeacherVolume], cfg: DistilConfig, multiple: int) -> None:
        if not volumes:
            raise InputError("no specimens to distil on")
        self.volumes, self.cfg, self.multiple = list(volumes), cfg, multiple
        self.rng = np.random.default_rng(cfg.seed)
        self.slices: list[list[tuple[np.ndarray, np.ndarray]]] = []
        low, high = UNCERTAIN
        for v in self.volumes:
            per_axis = []
            for a in (0, 1, 2):
                tissue = np.moveaxis(v.tissue, a, 0).any(axis=(1, 2))
                target = np.moveaxis(v.teacher[a], a, 0)
                uncertain = ((target > low) & (target < high)).any(axis=(1, 2)) & tissue
                per_axis.append((np.flatnonzero(tissue), np.flatnonzero(uncertain)))
            self.slices.append(per_axis)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N, C, H, W)`` inputs and ``(N, H, W)`` teacher probabilities (H, W padded to the multiple)."""
        from breastseg.nets.resunet import pad_multiple

        v = int(self.rng.integers(len(self.volumes)))
        axis = int(self.rng.integers(3))
        tissue, uncertain = self.slices[v][axis]
        pool = uncertain if uncertain.size and self.rng.random() < self.cfg.boundary_fraction else tissue
        chosen = self.rng.choice(pool, size=min(self.cfg.batch_size, pool.size), replace=False)
        volume = self.volumes[v]
        x = np.moveaxis(np.moveaxis(volume.channels, axis + 1, 1)[:, chosen], 0, 1)
        y = np.moveaxis(volume.teacher[axis], axis, 0)[chosen]
        h, w = x.shape[-2:]
        ph, pw = pad_multiple(h, self.multiple), pad_multiple(w, self.multiple)
        xs = np.zeros((*x.shape[:2], ph, pw), np.float32)
        ys = np.zeros((len(chosen), ph, pw), np.float32)
        xs[..., :h, :w], ys[:, :h, :w] = x, y
        return xs, ys


def train_student(
    volumes: Sequence[TeacherVolume],
    cfg: DistilConfig,
    in_channels: int,
    progress: Callable[[int, float], None] | None = None,
    device: str = "auto",
) -> tuple[dict[str, Any], float]:
    """Train the student on the teacher's targets; returns its weights (CPU state dict) and the last 100 steps'
    mean loss."""
    import torch
    from torch.nn import functional as F

    from breastseg.learn.trainer import Optimiser, TrainConfig, make_optimiser, set_poly_learning_rate
    from breastseg.nets.resunet import ResUNetConfig, build_resunet
    from breastseg.predict.device import resolve_device

    torch.manual_seed(cfg.seed)
    run_on = resolve_device(device)
    config = ResUNetConfig(in_channels=in_channels, depth=cfg.depth, first_channels=cfg.first_channels)
    net = build_resunet(config)
    net.to(run_on).train()
    optimiser = make_optimiser(
        net, TrainConfig(learning_rate=cfg.learning_rate, weight_decay=0.0, optimiser=Optimiser.ADAM)
    )
    sampler = SliceSampler(volumes, cfg, config.size_multiple)
    losses: list[float] = []
    for step in range(cfg.steps):
        set_poly_learning_rate(optimiser, cfg.learning_rate, step, cfg.steps)
        x, y = sampler.batch()
        xt, yt = torch.from_numpy(x).to(run_on), torch.from_numpy(y).to(run_on)
        with torch.autocast(run_on.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
            logits = net(xt)
        logit = (logits[:, 1] - logits[:, 0]).float()  # the tumour logit of a two-class softmax
        loss = F.binary_cross_entropy_with_logits(logit, yt)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, float(np.mean(losses[-100:])))
    net.eval()
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return state, float(np.mean(losses[-100:]))


def student_member(
    bundle: ModelBundle, state: dict[str, Any], cfg: DistilConfig, extra_patients: Sequence[str] = ()
) -> BundleMember:
    """The student as a bundle member: its architecture, the first member's normalisation, and the union of the
    members' patients and ``extra_patients`` (those of the distillation specimens), so the leakage guard can
    refuse it."""
    from breastseg.nets.resunet import ResUNetConfig
    from breastseg.workflows.specimen.bundle import BundleMember

    first = bundle.members[0]
    normalisation = bundle.member_normalisation(first)
    training = sorted({p for m in bundle.members for p in m.training_patients} | {p for p in extra_patients if p})
    validation = sorted({p for m in bundle.members for p in m.validation_patients} - set(training))
    net = ResUNetConfig(in_channels=len(normalisation.channels), depth=cfg.depth, first_channels=cfg.first_channels)
    return BundleMember(state, tuple(training), tuple(validation), "student", None, net, normalisation)


@dataclass(frozen=True)
class DistilResult:
    """What :func:`distil_bundle` wrote: the bundle file with its student, and how the student was made."""

    path: Path
    specimens: int
    teacher_members: int
    config: DistilConfig
    final_loss: float
    seconds: dict[str, float]

    def card(self) -> dict[str, Any]:
        return {
            "teacher_members": self.teacher_members,
            "specimens": self.specimens,
            **asdict(self.config),
            "final_loss": round(self.final_loss, 5),
            "seconds": self.seconds,
        }


def distil_bundle(
    model: str | Path,
    manifest: str | Path,
    out: str | Path,
    cfg: DistilConfig | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> DistilResult:
    """``breastseg specimen distil``: the bundle ``model`` with a student distilled from its members on the
    specimens of ``manifest`` (:func:`~breastseg.workflows.specimen.cohort.read_unlabelled_manifest`), written to
    ``out``. The members are kept: ``specimen assess --exact`` still runs them."""
    from breastseg.workflows.specimen.bundle import ModelBundle
    from breastseg.workflows.specimen.cohort import read_unlabelled_manifest
    from breastseg.workflows.specimen.pipeline import load_specimen
    from breastseg.workflows.specimen.preprocess import preprocess

    cfg = cfg or DistilConfig()
    say = progress or (lambda _step: None)
    bundle = ModelBundle.load(model)
    cases = read_unlabelled_manifest(manifest)
    t0 = time.perf_counter()

    def preprocessed() -> Iterator[tuple[Image, Image, np.ndarray]]:
        for i, case in enumerate(cases):
            say(f"teacher ({len(bundle.members)} members, every slice): specimen {i + 1} of {len(cases)}")
            ct, pet, info = load_specimen(case.ct, case.pet, case.pet_info)
            pair = preprocess(ct, pet, info, sources=(str(case.ct), str(case.pet)))
            yield pair.ct, pair.pet, pair.tissue

    volumes = teacher_volumes(bundle, preprocessed(), device)
    t1 = time.perf_counter()

    def step(done: int, loss: float) -> None:
        if done % 50 == 0 or done == cfg.steps:
            say(f"student: step {done} of {cfg.steps}, loss {loss:.4f}")

    state, loss = train_student(volumes, cfg, volumes[0].channels.shape[0], step, device)
    seconds = {"teacher": round(t1 - t0, 1), "training": round(time.perf_counter() - t1, 1)}
    result = DistilResult(Path(out), len(cases), len(bundle.members), cfg, loss, seconds)
    member = student_member(bundle, state, cfg, [c.patient_id for c in cases])
    card = {**bundle.card, "student": {**result.card(), "specimens_manifest": str(manifest)}}
    dataclasses.replace(bundle, student=member, card=card).save(out)
    return result
