"""The specimen ResU-Net's model bundle: the ensemble's weights, architecture, normalisation and model card in one file.

Stored in the model-file format every workflow shares (:mod:`breastseg.learn.model_file`: a JSON header and plain
tensors, loaded with ``weights_only=True``, so no code is unpickled). Every member records the patients it was
trained on, so inference can leave out the members that saw the patient being predicted (the study's leakage guard).
A member may carry its own architecture and normalisation: the study's 25-model ensemble joins five test folds whose
searches chose different networks (:func:`combine_bundles`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from breastseg._version import __version__
from breastseg.errors import ModelError
from breastseg.learn.ensemble import Member, independent_members
from breastseg.learn.model_file import read_model_file, write_model_file
from breastseg.nets.resunet import ResUNetConfig
from breastseg.workflows.specimen.normalisation import Normalisation

BUNDLE_KIND = "breastseg.specimen.resunet"
#: 3: a bundle may carry a distilled student beside its members; a bundle without one is still written as 2
BUNDLE_SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)


@dataclass(eq=False)
class BundleMember(Member):
    """One trained network of the specimen ensemble, with the architecture and normalisation its search chose
    (``None``: the bundle's own)."""

    net: ResUNetConfig | None = None
    normalisation: Normalisation | None = None


@dataclass(eq=False)
class EnsembleNet:
    """One loaded member, ready to predict: its network, input normalisation and padding multiple."""

    net: nn.Module
    normalisation: Normalisation
    size_multiple: int


@dataclass(eq=False)
class ModelBundle:
    net: ResUNetConfig
    normalisation: Normalisation
    members: list[BundleMember]
    card: dict[str, Any] = field(default_factory=dict)
    pixel_spacing_mm: float | None = None
    """In-plane pixel size of the training slices, mm: 3D inference runs at this isotropic spacing (a CNN is not
    scale invariant). ``None`` (bundles written before it was recorded): the image's own grid."""
    student: BundleMember | None = None
    """One network distilled from the members (:mod:`breastseg.workflows.specimen.distil`): the fast path runs it
    instead of the members; its training patients are all the members' patients."""

    def member_net(self, member: BundleMember) -> ResUNetConfig:
        return member.net or self.net

    def member_normalisation(self, member: BundleMember) -> Normalisation:
        return member.normalisation or self.normalisation

    def ensemble(self, exclude_patient: str | None = None) -> list[EnsembleNet]:
        """The members, loaded, leaving out any trained or validated on ``exclude_patient``.

        Raises:
            ModelError: every member saw that patient (nothing independent is left to predict with).
        """
        return [
            _loaded(m, self.member_net(m), self.member_normalisation(m))
            for m in independent_members(self.members, exclude_patient)
        ]

    def student_net(self, exclude_patient: str | None = None) -> EnsembleNet | None:
        """The distilled student, loaded; ``None`` when the bundle has none or any member saw ``exclude_patient``
        (the student learnt from every member, so it is not independent of that patient)."""
        s = self.student
        if s is None or (
            exclude_patient is not None and exclude_patient in (*s.training_patients, *s.validation_patients)
        ):
            return None
        return _loaded(s, self.member_net(s), self.member_normalisation(s))

    def networks(self, exclude_patient: str | None = None) -> list[nn.Module]:
        """The members' networks (see :meth:`ensemble`)."""
        return [e.net for e in self.ensemble(exclude_patient)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {
            "kind": BUNDLE_KIND,
            "schema_version": BUNDLE_SCHEMA_VERSION if self.student is not None else 2,
            "net": asdict(self.net),
            "normalisation": self.normalisation.to_json(),
            "card": self.card,
            "pixel_spacing_mm": self.pixel_spacing_mm,
            "members": [_member_header(m) for m in self.members],
            **({"student": _member_header(self.student)} if self.student is not None else {}),
        }
        weights = [m.state_dict for m in self.members] + ([self.student.state_dict] if self.student else [])
        return write_model_file(path, header, weights, render_card(self))

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        header, weights = read_model_file(path, BUNDLE_KIND, "model bundle (specimen Residual U-Net)")
        if header.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
            raise ModelError(
                f"{path}: bundle schema version {header.get('schema_version')!r} is newer than this breastseg "
                f"({__version__}) reads; update breastseg"
            )
        weights = list(weights)
        student = _member_from_header(weights.pop(), header["student"]) if "student" in header else None
        members = [_member_from_header(w, m) for w, m in zip(weights, header["members"], strict=True)]
        return cls(
            ResUNetConfig(**header["net"]),
            Normalisation.from_json(header["normalisation"]),
            members,
            header.get("card", {}),
            header.get("pixel_spacing_mm"),
            student,
        )


def _loaded(member: BundleMember, config: ResUNetConfig, normalisation: Normalisation) -> EnsembleNet:
    net = config.build_plain()  # MONAI's module under another name: no MONAI import to run a bundle
    net.load_state_dict(member.state_dict)
    net.eval()
    return EnsembleNet(net, normalisation, config.size_multiple)


def _member_header(m: BundleMember) -> dict[str, Any]:
    return {
        "training_patients": list(m.training_patients),
        "validation_patients": list(m.validation_patients),
        "fold": m.fold,
        "best_validation_dice": m.best_validation_dice,
        **({"net": asdict(m.net)} if m.net is not None else {}),
        **({"normalisation": m.normalisation.to_json()} if m.normalisation is not None else {}),
    }


def _member_from_header(weights: Any, m: dict[str, Any]) -> BundleMember:
    return BundleMember(
        weights,
        tuple(m["training_patients"]),
        tuple(m.get("validation_patients", ())),
        m.get("fold", ""),
        m.get("best_validation_dice"),
        ResUNetConfig(**m["net"]) if "net" in m else None,
        Normalisation.from_json(m["normalisation"]) if "normalisation" in m else None,
    )


def combine_bundles(bundles: Sequence[ModelBundle], card: dict[str, Any]) -> ModelBundle:
    """One bundle with every member of ``bundles``, each keeping its own architecture and normalisation.

    The study's 3D margin ensemble: the five test folds' five-member bundles → 25 members; the leakage guard
    still works per member, from the patients each was trained and validated on.
    """
    if not bundles:
        raise ModelError("no bundles to combine")
    channels = {b.normalisation.channels for b in bundles}
    if len(channels) > 1:
        raise ModelError(f"cannot combine bundles with different inputs: {sorted(channels)}")
    spacings = {b.pixel_spacing_mm for b in bundles}
    if len(spacings) > 1:
        raise ModelError(f"cannot combine bundles trained at different pixel spacings: {sorted(map(str, spacings))} mm")
    members = [
        dataclasses.replace(m, net=b.member_net(m), normalisation=b.member_normalisation(m))
        for b in bundles
        for m in b.members
    ]
    return ModelBundle(bundles[0].net, bundles[0].normalisation, members, card, bundles[0].pixel_spacing_mm)


def render_card(bundle: ModelBundle) -> str:
    """Markdown model card: inputs, normalisation limits, training data, validation scores, intended use."""
    card = bundle.card
    norm = bundle.normalisation
    training = card.get("training", {})
    low, high = training.get("ct_percentiles", (5.0, 95.0))
    train = training.get("train", {})
    patch = train.get("patch", {})
    recipe = (
        f"* **Recipe**: {train.get('loss', '?')} loss, {train.get('epochs', '?')} epochs at most, "
        f"{training.get('folds', '?')} folds, {patch.get('size', '?')} px patches "
        f"({100 * patch.get('positive_bias', 0.0):.0f} % centred on tumour), seed {training.get('seed', '?')}"
        if train
        else None
    )
    lines = [
        f"# Model card: {card.get('model', 'Residual U-Net bundle')}",
        "",
        f"* **Inputs**: {', '.join(norm.channels)} (2D slices; tri-planar in 3D)",
        f"* **Normalisation**: CT {norm.ct_low_hu:.1f}…{norm.ct_high_hu:.1f} HU (percentiles {low:g} and {high:g} "
        f"of the training foreground) → [0, 1]; PET 0…{100 * norm.pet_high_fraction:.0f} % of the specimen's SUL "
        "maximum → [0, 1]",
        f"* **Architecture**: depth {bundle.net.depth}, {bundle.net.first_channels} first-level channels, kernel "
        f"{bundle.net.kernel_size}, {bundle.net.norm} norm, dropout {bundle.net.dropout}",
        f"* **Trained**: {card.get('trained', '?')} with breastseg {card.get('breastseg_version', '?')}",
        f"* **Training data**: {card.get('data', '?')} — {len(card.get('patients', []))} patients, "
        f"{card.get('n_slices', '?')} slices, tumour types {', '.join(card.get('tumour_types', []))}",
        f"* **Pixel spacing**: {bundle.pixel_spacing_mm if bundle.pixel_spacing_mm else 'not recorded'} mm "
        "(3D inference resamples to it)",
        *([recipe] if recipe else []),
        f"* **Fine-tuned from**: {card.get('fine_tuned_from') or '—'}",
        f"* **Intended use**: {card.get('intended_use', 'research')}",
        "",
        "| member | validation patients | best validation Dice |",
        "|---|---|---|",
    ]
    for m in bundle.members:
        score = "—" if m.best_validation_dice is None else f"{m.best_validation_dice:.3f}"
        lines.append(f"| {m.fold} | {', '.join(m.validation_patients)} | {score} |")
    if any(m.net is not None for m in bundle.members):
        lines += ["", "Members carry their own architectures (one hyper-parameter search per test fold):", ""]
        lines += ["| member | depth | channels | kernel | norm | CT limits (HU) |", "|---|---|---|---|---|---|"]
        for m in bundle.members:
            net, norm = bundle.member_net(m), bundle.member_normalisation(m)
            lines.append(
                f"| {m.fold} | {net.depth} | {net.first_channels} | {net.kernel_size} | {net.norm} | "
                f"{norm.ct_low_hu:.0f}…{norm.ct_high_hu:.0f} |"
            )
    return "\n".join(lines) + "\n"
