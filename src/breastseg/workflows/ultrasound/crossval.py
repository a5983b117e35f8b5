"""K-fold cross-validation of an ultrasound network on a recorded split, and the per-image read-outs.

For test fold k the next fold, (k + 1) mod K, is the validation fold (early stopping, best epoch) and the other
K − 2 folds train: the test fold never influences a choice. Each fold writes ``fold<k>.pt`` (the model and its
card) and ``fold<k>_images.csv`` (one row per test image: class, Dice, pixel accuracy, recall, precision, pixel
counts, on the image's own grid); a fold whose CSV exists is skipped, so an interrupted run resumes. The summary
(:func:`summarise_cv`) reports the study's metrics per class — lesion images (benign, malignant, both) by
per-image mean and pooled over pixels, with the pooled pixel confusion matrix, and normal images by their
false-positive area.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from breastseg.errors import InputError
from breastseg.evaluation.metrics import Confusion, confusion
from breastseg.io.atomic import write_json
from breastseg.io.tables import write_csv_rows
from breastseg.learn.trainer import TrainConfig
from breastseg.nets import NetConfig, net_config_to_dict
from breastseg.workflows.ultrasound.dataset import UltrasoundCase, case_fingerprints, load_case
from breastseg.workflows.ultrasound.model import UltrasoundModel, predict_probability, train_fold
from breastseg.workflows.ultrasound.postprocess import MaskRule

if TYPE_CHECKING:
    import torch

IMAGE_COLUMNS = ("case_id", "label", "fold", "dice", "pixel_accuracy", "recall", "precision", "tp", "fp", "fn", "tn")


@dataclass(frozen=True)
class ImageScore(Confusion):
    """One test image's pixel counts against its reference mask (on the image's own grid), and which image.

    ``recall`` and ``precision`` come from :class:`~breastseg.evaluation.metrics.Confusion` (``None`` when
    undefined); ``dice`` is the F1 of the pixels, left ``None`` on an image without a lesion, where the
    false-positive area is the read-out.
    """

    case_id: str = ""
    label: str | None = None
    fold: int = 0

    @property
    def dice(self) -> float | None:
        return self.f1 if self.tp + self.fn else None

    @property
    def pixel_accuracy(self) -> float | None:
        return self.accuracy

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in IMAGE_COLUMNS}


def score_image(case: UltrasoundCase, fold: int, prediction: np.ndarray, reference: np.ndarray) -> ImageScore:
    """Pixel counts of ``prediction`` against ``reference``. Dice, recall and precision are left undefined
    (``None``) on an image without a lesion: there a false-positive area is the read-out."""
    c = confusion(prediction, reference)
    return ImageScore(tp=c.tp, fp=c.fp, tn=c.tn, fn=c.fn, case_id=case.case_id, label=case.label, fold=fold)


def fold_cases(
    cases: Sequence[UltrasoundCase], folds: Sequence[Sequence[str]], k: int
) -> tuple[list[UltrasoundCase], list[UltrasoundCase], list[UltrasoundCase]]:
    """(train, validation, test) cases of test fold ``k`` (validation: fold ``k + 1``)."""
    by_id = {c.case_id: c for c in cases}
    missing = sorted({c for f in folds for c in f} - set(by_id))
    if missing:
        raise InputError(f"the split names {len(missing)} cases the dataset lacks, e.g. {missing[:3]}")
    n = len(folds)
    val_k = (k + 1) % n
    train = [by_id[c] for j, f in enumerate(folds) if j not in (k, val_k) for c in f]
    return train, [by_id[c] for c in folds[val_k]], [by_id[c] for c in folds[k]]


def write_scores(scores: Sequence[ImageScore], path: Path) -> None:
    write_csv_rows([s.row() for s in scores], path, IMAGE_COLUMNS)


def read_scores(path: Path) -> list[ImageScore]:
    with path.open(encoding="utf-8") as f:
        return [
            ImageScore(
                **{k: int(r[k]) for k in ("tp", "fp", "tn", "fn")},
                case_id=r["case_id"],
                label=r["label"] or None,
                fold=int(r["fold"]),
            )
            for r in csv.DictReader(f)
        ]


def read_cv_scores(cv_dir: str | Path) -> list[ImageScore]:
    """Every test image's score of a cross-validation folder (its ``fold<k>_images.csv`` files)."""
    paths = sorted(Path(cv_dir).glob("fold*_images.csv"))
    if not paths:
        raise InputError(f"{cv_dir}: no fold<k>_images.csv here; is it a 'breastseg ultrasound train' folder?")
    return [s for path in paths for s in read_scores(path)]


def probabilities(
    model: UltrasoundModel, cases: Iterable[UltrasoundCase], flip: bool = True, device: str | torch.device = "cpu"
) -> Iterator[tuple[UltrasoundCase, np.ndarray, np.ndarray, np.ndarray]]:
    """``(case, image, reference, probability)`` for each case, the model loaded once (onto ``device``), with the
    left-right test-time flip as ``ultrasound predict`` does by default."""
    network = model.network(device)
    for case in cases:
        image, reference = load_case(case)
        yield case, image, reference, predict_probability([network], image, model.input_size, flip=flip)


def predictions(
    model: UltrasoundModel,
    cases: Iterable[UltrasoundCase],
    flip: bool = True,
    rule: MaskRule | None = None,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[UltrasoundCase, np.ndarray, np.ndarray, np.ndarray]]:
    """``(case, image, reference, prediction)`` for each case: the probability made a mask by ``rule`` (default:
    the model's own, see :attr:`UltrasoundModel.rule`)."""
    chosen = rule if rule is not None else model.rule
    for case, image, reference, probability in probabilities(model, cases, flip, device):
        yield case, image, reference, chosen.apply(probability)


def out_of_fold_probabilities(
    cv_dir: str | Path, cases: Sequence[UltrasoundCase], flip: bool = True
) -> Iterator[tuple[ImageScore, MaskRule, np.ndarray, np.ndarray, np.ndarray]]:
    """Each test image of a cross-validation folder predicted again by its fold's model (``fold<k>.pt``, the
    one that never saw it): ``(score as recorded, the model's mask rule, image, reference, probability)``, fold
    by fold."""
    by_id = {c.case_id: c for c in cases}
    scores = read_cv_scores(cv_dir)
    for k in sorted({s.fold for s in scores}):
        path = Path(cv_dir) / f"fold{k}.pt"
        if not path.is_file():
            raise InputError(f"{path}: the fold's model is missing; re-run 'breastseg ultrasound train' there")
        fold = [s for s in scores if s.fold == k]
        missing = [s.case_id for s in fold if s.case_id not in by_id]
        if missing:
            raise InputError(f"{cv_dir}: fold {k} scored {len(missing)} images the dataset lacks, e.g. {missing[0]}")
        model = UltrasoundModel.load(path)
        for score, (_, image, reference, probability) in zip(
            fold, probabilities(model, [by_id[s.case_id] for s in fold], flip), strict=True
        ):
            yield score, model.rule, image, reference, probability


def score_fold(
    model: UltrasoundModel,
    test: Sequence[UltrasoundCase],
    k: int,
    flip: bool = True,
    device: str | torch.device = "cpu",
) -> list[ImageScore]:
    """Score fold ``k``'s model on its test cases (see :func:`predictions`)."""
    return [score_image(case, k, pred, ref) for case, _, ref, pred in predictions(model, test, flip, device=device)]


def run_fold(
    cases: Sequence[UltrasoundCase],
    folds: Sequence[Sequence[str]],
    k: int,
    net: NetConfig,
    config: TrainConfig,
    input_size: int,
    out_dir: Path,
    card: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> list[ImageScore]:
    """Train test fold ``k``'s network on ``device``, save it, score its test images (see the module docstring)."""
    scores_path = out_dir / f"fold{k}_images.csv"
    if scores_path.is_file():
        return read_scores(scores_path)
    train, validation, test = fold_cases(cases, folds, k)
    result = train_fold(
        train,
        validation,
        net,
        config,
        input_size,
        checkpoint=out_dir / f"fold{k}.checkpoint.pt",
        description=f"fold {k} ({len(train)} train, {len(validation)} validation)",
        device=device,
    )
    model = UltrasoundModel(
        net,
        result.state_dict,
        input_size,
        {
            **(card or {}),
            "fold": f"test fold {k}, validation fold {(k + 1) % len(folds)}",
            "best_validation_dice": round(result.best_validation_dice, 4),
            "best_epoch": result.best_epoch,
            "training_images": len(train),
        },
        training_fingerprints=frozenset(case_fingerprints([*train, *validation])),
    )
    model.save(out_dir / f"fold{k}.pt")
    scores = score_fold(model, test, k, device=device)
    write_scores(scores, scores_path)
    (out_dir / f"fold{k}.checkpoint.pt").unlink(missing_ok=True)
    return scores


def cross_validate(
    cases: Sequence[UltrasoundCase],
    folds: Sequence[Sequence[str]],
    net: NetConfig,
    config: TrainConfig,
    input_size: int,
    out_dir: str | Path,
    which: Iterable[int] | None = None,
    card: Mapping[str, Any] | None = None,
    on_fold: Callable[[int, list[ImageScore]], None] | None = None,
    device: str | torch.device = "cpu",
) -> list[ImageScore]:
    """Run (or resume) the folds ``which`` (default all) into ``out_dir`` on ``device``; returns every test
    image's score."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"net": net_config_to_dict(net), "train": asdict(config), "input_size": input_size}
    write_json(settings, out / "settings.json")
    scores: list[ImageScore] = []
    for k in which if which is not None else range(len(folds)):
        fold_scores = run_fold(cases, folds, k, net, config, input_size, out, card, device)
        if on_fold is not None:
            on_fold(k, fold_scores)
        scores += fold_scores
    return scores


def _mean_sd(values: Sequence[float]) -> dict[str, float | int | None]:
    arr = np.asarray(values, float)
    if arr.size == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None}
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"n": int(arr.size), "mean": float(arr.mean()), "sd": sd, "median": float(np.median(arr))}


def summarise_cv(scores: Sequence[ImageScore]) -> dict[str, Any]:
    """Per class: per-image mean ± SD and pooled metrics with the pooled confusion matrix; normals: FP area."""
    out: dict[str, Any] = {}
    lesion = [s for s in scores if s.tp + s.fn > 0]
    groups = {"lesion": lesion, **{lb: [s for s in lesion if s.label == lb] for lb in ("benign", "malignant")}}
    for name, group in groups.items():
        if not group:
            continue
        tp, fp, fn, tn = (sum(getattr(s, k) for s in group) for k in ("tp", "fp", "fn", "tn"))
        out[name] = {
            "images": len(group),
            "per_image": {
                m: _mean_sd([v for s in group if (v := getattr(s, m)) is not None])
                for m in ("dice", "pixel_accuracy", "recall", "precision")
            },
            "pooled": {
                "dice": 2 * tp / (2 * tp + fp + fn),
                "pixel_accuracy": (tp + tn) / (tp + fp + fn + tn),
                "recall": tp / (tp + fn),
                "precision": tp / (tp + fp) if tp + fp else None,
                "confusion_matrix": {
                    "rows": "reference (background, lesion)",
                    "columns": "prediction",
                    "counts": [[tn, fp], [fn, tp]],
                },
            },
        }
    normals = [s for s in scores if s.tp + s.fn == 0]
    if normals:
        fractions = [s.fp / (s.fp + s.tn) for s in normals]
        out["normal"] = {
            "images": len(normals),
            "images_with_false_positives": sum(s.fp > 0 for s in normals),
            "false_positive_fraction_of_image": _mean_sd(fractions),
            "false_positive_pixels": _mean_sd([s.fp for s in normals]),
        }
    return out
