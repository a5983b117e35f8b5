"""Hostile inputs: damaged, mismatched and misdirected inputs through the real command line, each classified.

Every case copies a valid phantom, breaks one thing as a careless or hostile user (or a faulty scanner export)
would, runs ``breastseg`` in a subprocess and classifies what came back:

* ``named error`` — exit 2 and one line ``breastseg: error: …``;
* ``not assessable`` — a named error or a result that says so (a response without a category);
* ``result`` — exit 0 with outputs (for the cases where going on is right, the table says whether it is right);
* ``traceback`` — anything else (an unexpected exception, another exit code);
* ``lost data`` — an input or an earlier output changed, whatever the exit code.

A case passes when it is refused (named error or not assessable) where it must be, or gives the right result
where it may go on, and never loses data. The table is what a reliability review counts; the same cases are
regression tests in ``tests/reliability/``.

Run: ``.venv/bin/python benchmarks/hostile_inputs.py [--keep DIR]`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from PIL import Image as PILImage

from breastseg.machine import print_header

BREASTSEG = [sys.executable, "-m", "breastseg"]
SMALL = ["--ct-spacing-mm", "0.4", "--pet-spacing-mm", "0.8", "--tumour-diameter-mm", "8"]


def _digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@dataclass
class Outcome:
    kind: str
    detail: str


def run(argv: list[str], watched: list[Path]) -> tuple[Outcome, subprocess.CompletedProcess[str]]:
    before = {p: _digest(p) for p in watched if p.exists()}
    done = subprocess.run([*BREASTSEG, *argv], capture_output=True, text=True, timeout=600)
    err = done.stderr.strip()
    if any(_digest(p) != d for p, d in before.items() if p.exists()) or any(not p.exists() for p in before):
        return Outcome("lost data", err[-200:]), done
    if "Traceback" in done.stderr or done.returncode not in (0, 1, 2):
        return Outcome("traceback", err.splitlines()[-1][:200] if err else f"exit {done.returncode}"), done
    lines = [line for line in err.splitlines() if line.startswith("breastseg: error:")]
    if done.returncode == 2 and len(lines) == 1:
        kind = "not assessable" if "not assessable" in lines[0] else "named error"
        return Outcome(kind, lines[0].removeprefix("breastseg: error: ")[:200]), done
    if done.returncode in (0, 1):
        return Outcome("result", f"exit {done.returncode}"), done
    return Outcome("traceback", err[-200:]), done


def _edit_series(folder: Path, edit: Callable[[int, pydicom.Dataset], None]) -> None:
    for k, f in enumerate(sorted(folder.glob("*.dcm"))):
        ds = pydicom.dcmread(f)
        edit(k, ds)
        ds.save_as(f)


def _edit_nifti(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    img = sitk.ReadImage(str(path))
    out = sitk.GetImageFromArray(np.ascontiguousarray(change(sitk.GetArrayFromImage(img))))
    out.SetSpacing(img.GetSpacing())
    out.SetOrigin(img.GetOrigin())
    out.SetDirection(img.GetDirection())
    sitk.WriteImage(out, str(path))


def _edit_json(path: Path, **pet: object) -> None:
    doc = json.loads(path.read_text())
    doc["pet"].update(pet)
    path.write_text(json.dumps(doc))


class Battery:
    """The phantoms once, then each case on a fresh copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.specimen = root / "specimen"
        self.patient = root / "patient"
        phantom = ["phantom", "specimen", "--out", str(self.specimen), "--seed", "0", "--margin-mm", "1.5", "--dicom"]
        subprocess.run([*BREASTSEG, *phantom, *SMALL], check=True, capture_output=True)
        subprocess.run([*BREASTSEG, "phantom", "petct", "--out", str(self.patient)], check=True, capture_output=True)
        self.n = 0
        self.rows: list[tuple[str, str, str, str, bool]] = []

    def fresh(self, source: Path) -> Path:
        self.n += 1
        target = self.root / f"case{self.n:02d}"
        shutil.copytree(source, target)
        return target

    def record(self, name: str, expected: str, outcome: Outcome, right: bool | None = None) -> None:
        refused = outcome.kind in ("named error", "not assessable")
        if outcome.kind in ("lost data", "traceback"):
            ok = False
        elif expected == "refuse":
            ok = refused
        elif expected == "not assessable":
            ok = outcome.kind == "not assessable"
        else:
            ok = outcome.kind == "result" and right is not False
        self.rows.append((name, expected, outcome.kind, outcome.detail, ok))
        mark = "ok " if ok else "BAD"
        print(f"{mark} {name:58s} {outcome.kind:15s} {outcome.detail[:90]}", flush=True)


def assess(case: Path, out: Path, *extra: str, dicom: bool = False) -> list[str]:
    if dicom:
        return ["specimen", "assess", "--ct", str(case / "dicom/ct"), "--pet", str(case / "dicom/pet"), "--out",
                str(out), *extra]  # fmt: skip
    return ["specimen", "assess", "--ct", str(case / "ct.nii.gz"), "--pet", str(case / "pet.nii.gz"),
            "--pet-info", str(case / "truth.json"), "--out", str(out), *extra]  # fmt: skip


def _status(out: Path) -> str | None:
    path = out / "result.json"
    return str(json.loads(path.read_text())["margin_status"]) if path.is_file() else None


def specimen_cases(b: Battery) -> None:
    c = b.fresh(b.specimen)
    b.record("--out is the inputs' folder", "refuse", run(assess(c, c), [c])[0])
    c = b.fresh(b.specimen)
    b.record("--out is the inputs' parent", "refuse", run(assess(c, c.parent), [c])[0])
    c = b.fresh(b.specimen)
    b.record("--dicom-out equals --out", "refuse", run([*assess(c, c / "a", dicom=True), "--dicom-out", str(c / "a")],
                                                       [c])[0])  # fmt: skip
    c = b.fresh(b.specimen)
    b.record("--out inside the DICOM input folder", "refuse", run(assess(c, c / "dicom/ct/a", dicom=True), [c])[0])
    c = b.fresh(b.specimen)
    theirs = b.root / f"theirs{b.n}"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    b.record("--out a folder of someone else's files", "refuse", run(assess(c, theirs), [c, theirs])[0])
    outcome, _ = run([*assess(c, theirs), "--overwrite"], [c])
    kept = (theirs / "notes.txt").read_text() == "keep me"
    b.record("… with --overwrite: their file kept", "result", outcome, kept and _status(theirs) == "negative")
    b.record("--out on a read-only location", "refuse", run(assess(c, Path("/proc/breastseg/out")), [c])[0])

    c = b.fresh(b.specimen)
    _edit_series(c / "dicom/pet", lambda _k, ds: setattr(ds, "PatientID", "SOMEONE-ELSE"))
    b.record("DICOM PET of another patient", "refuse", run(assess(c, c.parent / f"o{b.n}", dicom=True), [c])[0])
    outcome, _ = run([*assess(c, c.parent / f"p{b.n}", dicom=True), "--allow-pair-mismatch"], [c])
    b.record("… with --allow-pair-mismatch", "result", outcome, _status(c.parent / f"p{b.n}") == "negative")

    for name, change, expected in (
        ("all-zero PET", np.zeros_like, "refuse"),
        ("all-NaN PET", lambda a: np.full_like(a, np.nan, dtype=np.float32), "refuse"),
        ("NaN in the hottest PET voxels", lambda a: np.where(a > np.percentile(a, 99), np.nan, a).astype(np.float32),
         "refuse"),
        ("PET uptake only in a corner, none in the tissue", lambda a: np.pad(np.zeros_like(a)[1:], ((1, 0), (0, 0),
         (0, 0)), constant_values=1000.0), "not assessable"),
    ):  # fmt: skip
        c = b.fresh(b.specimen)
        _edit_nifti(c / "pet.nii.gz", change)
        b.record(name, expected, run(assess(c, c / "out"), [c / "pet.nii.gz", c / "ct.nii.gz"])[0])
    for name, field, value in (
        ("injected dose NaN", "injected_dose_bq", float("nan")),
        ("weight 68,000 kg", "patient_weight_kg", 68000.0),
        ("height 165 m (cm for m)", "patient_height_m", 165.0),
    ):
        c = b.fresh(b.specimen)
        _edit_json(c / "truth.json", **{field: value})
        b.record(name, "refuse", run(assess(c, c / "out"), [c / "ct.nii.gz"])[0])

    c = b.fresh(b.specimen)
    data = (c / "ct.nii.gz").read_bytes()
    (c / "ct.nii.gz").write_bytes(data[: len(data) * 2 // 3])
    b.record("truncated ct.nii.gz", "refuse", run(assess(c, c / "out"), [c / "pet.nii.gz"])[0])
    c = b.fresh(b.specimen)
    img = sitk.ReadImage(str(c / "ct.nii.gz"))
    img.SetSpacing([s * 1000 for s in img.GetSpacing()])
    sitk.WriteImage(img, str(c / "ct.nii.gz"))
    b.record("CT spacing × 1000", "refuse", run(assess(c, c / "out"), [c / "pet.nii.gz"])[0])
    c = b.fresh(b.specimen)
    _edit_nifti(c / "ct.nii.gz", lambda a: (a + 1024).astype(np.int16))
    b.record("CT in stored values, not HU", "refuse", run(assess(c, c / "out"), [c / "pet.nii.gz"])[0])
    c = b.fresh(b.specimen)
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(c / "tumour.nii.gz"))) > 0
    z = int(np.argwhere(tumour)[:, 0].mean())
    _edit_nifti(c / "ct.nii.gz", lambda a: a[:z])
    b.record("CT field of view cuts through the tumour", "not assessable", run(assess(c, c / "out"), [])[0])
    c = b.fresh(b.specimen)
    _edit_nifti(c / "pet.nii.gz", lambda a: a[: a.shape[0] * 3 // 5])
    b.record("PET covers 60 % of the specimen", "not assessable", run(assess(c, c / "out"), [])[0])

    dicom_edits: list[tuple[str, str, Callable[[int, pydicom.Dataset], None], str]] = [
        ("DICOM PET without RescaleSlope", "pet", lambda _k, ds: delattr(ds, "RescaleSlope"), "refuse"),
        ("DICOM CT without RescaleIntercept", "ct", lambda _k, ds: delattr(ds, "RescaleIntercept"), "refuse"),
        ("gantry-tilted CT (15°)", "ct", lambda _k, ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0.966,
         0.259]), "refuse"),
        ("one CT slice with another PixelSpacing", "ct", lambda k, ds: setattr(ds, "PixelSpacing", [0.5, 0.5])
         if k == 7 else None, "refuse"),
        ("CT slices without InstanceNumber (harmless)", "ct", lambda _k, ds: delattr(ds, "InstanceNumber"), "result"),
    ]  # fmt: skip
    for name, series, edit, expected in dicom_edits:
        c = b.fresh(b.specimen)
        _edit_series(c / "dicom" / series, edit)
        outcome, _ = run(assess(c, c.parent / f"o{b.n}", dicom=True), [])
        b.record(name, expected, outcome, _status(c.parent / f"o{b.n}") == "negative" if expected == "result" else None)
    c = b.fresh(b.specimen)
    last = sorted((c / "dicom/ct").glob("*.dcm"))[-1]
    last.write_bytes(last.read_bytes()[:400])
    b.record("last CT file cut in its header", "refuse", run(assess(c, c.parent / f"o{b.n}", dicom=True), [])[0])
    c = b.fresh(b.specimen)
    victim = sorted((c / "dicom/ct").glob("*.dcm"))[5]
    ds = pydicom.dcmread(victim)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(victim)
    b.record("a CT file cut in its pixel data", "refuse", run(assess(c, c.parent / f"o{b.n}", dicom=True), [])[0])
    c = b.fresh(b.specimen)
    (c / "dicom/ct/README.txt").write_text("night shift")
    outcome, _ = run(assess(c, c.parent / f"o{b.n}", dicom=True), [])
    b.record("a note beside the DICOM files (harmless)", "result", outcome, _status(c.parent / f"o{b.n}") == "negative")


def petct_cases(b: Battery) -> None:
    def response(p: Path, out: Path, *extra: str) -> list[str]:
        return ["petct", "response", "--baseline", str(p / "baseline"), "--followup", str(p / "followup"), "--out",
                str(out), *extra]  # fmt: skip

    def category(out: Path) -> str | None:
        path = out / "response.json"
        return str(json.loads(path.read_text())["percist"]["category"]) if path.is_file() else None

    p = b.fresh(b.patient)
    outcome, _ = run(response(p, p.parent / f"r{b.n}"), [p])
    b.record("response of the phantom pair (PMR)", "result", outcome, category(p.parent / f"r{b.n}") == "PMR")
    p = b.fresh(b.patient)
    for name in ("pet.nii.gz", "lesions.nii.gz", "liver.nii.gz", "bone.nii.gz"):
        _edit_nifti(p / "followup" / name, lambda a: np.rot90(a, 1, axes=(1, 2)))
    outcome, _ = run(response(p, p.parent / f"r{b.n}"), [p])
    if category(p.parent / f"r{b.n}") == "not assessable":
        outcome = Outcome("not assessable", "registration failed")
    b.record("follow-up turned 90° (registration fails)", "not assessable", outcome)
    p = b.fresh(b.patient)
    argv = ["petct", "response", "--baseline", str(p / "followup"), "--followup", str(p / "baseline"), "--out",
            str(p.parent / f"r{b.n}")]  # fmt: skip
    b.record("baseline and follow-up swapped", "refuse", run(argv, [p])[0])
    p = b.fresh(b.patient)
    _edit_json(p / "followup/truth.json", patient_sex="M")
    b.record("follow-up of another patient (sex)", "refuse", run(response(p, p.parent / f"r{b.n}"), [p])[0])

    def biomarkers(p: Path, out: Path) -> list[str]:
        s = p / "baseline"
        return ["petct", "biomarkers", "--pet", str(s / "pet.nii.gz"), "--pet-info", str(s / "truth.json"), "--mask",
                str(s / "lesions.nii.gz"), "--out", str(out)]  # fmt: skip

    p = b.fresh(b.patient)
    _edit_nifti(p / "baseline/lesions.nii.gz", lambda a: np.where(a > 0, 1.0, 0.05).astype(np.float32))
    b.record("lesion mask of floats with a 0.05 background", "refuse", run(biomarkers(p, p / "b"), [])[0])
    p = b.fresh(b.patient)
    mask = p / "baseline/lesions.nii.gz"
    img = sitk.ReadImage(str(mask))
    z = int(np.argwhere(sitk.GetArrayFromImage(img) > 0)[:, 0].min())
    origin = list(img.GetOrigin())
    origin[2] -= (z + 1) * img.GetSpacing()[2]
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(mask))
    b.record("lesion mask partly outside the PET", "refuse", run(biomarkers(p, p / "b"), [])[0])
    p = b.fresh(b.patient)
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(p / "baseline/lesions.nii.gz"))) > 0
    _edit_nifti(p / "baseline/pet.nii.gz", lambda a: np.where(lesions, np.nan, a).astype(np.float32))
    b.record("NaN PET inside the lesions", "refuse", run(biomarkers(p, p / "b"), [])[0])


def raster_cases(b: Battery) -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:160, :200]
    grey = np.clip(90 + 40 * rng.rayleigh(1.0, (160, 200)), 0, 255)
    grey[((yy - 80) / 30) ** 2 + ((xx - 100) / 45) ** 2 < 1] = 30
    grey = grey.astype(np.uint8)
    folder = b.root / "us"
    folder.mkdir()
    PILImage.fromarray(grey).save(folder / "plain.png")
    PILImage.fromarray(grey.astype(np.uint16) * 257).save(folder / "sixteen.png")
    PILImage.fromarray(grey).convert("RGB").convert("CMYK").save(folder / "cmyk.tif")
    palette = PILImage.fromarray(grey, mode="P")
    palette.putpalette([v for g in range(256) for v in (g, g, g)])
    palette.save(folder / "palette.png")
    PILImage.fromarray(np.zeros_like(grey)).save(folder / "black.png")
    PILImage.fromarray(grey).save(folder / "cine.tif", save_all=True, append_images=[PILImage.fromarray(255 - grey)])

    def area(name: str) -> tuple[Outcome, int | None]:
        out = b.root / f"us-{name}"
        outcome, _ = run(["ultrasound", "predict", "--image", str(next(folder.glob(f"{name}.*"))), "--out", str(out)],
                         [folder])  # fmt: skip
        path = out / f"{name}.json"
        return outcome, int(json.loads(path.read_text())["area_px"]) if path.is_file() else None

    _, reference = area("plain")
    for name, label in (("sixteen", "16-bit PNG"), ("cmyk", "CMYK TIFF"), ("palette", "palette PNG")):
        outcome, got = area(name)
        b.record(f"ultrasound {label}: the 8-bit image's area", "result", outcome, got == reference)
    b.record("ultrasound all-black frame", "refuse", area("black")[0])
    b.record("ultrasound multi-page TIFF", "refuse", area("cine")[0])
    masks = b.root / "masks"
    masks.mkdir()
    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 1
    PILImage.fromarray(m).save(masks / "a.png")
    argv = ["evaluate", "seg", "--pred", str(masks / "a.png"), "--ref", str(masks / "a.png"), "--label", "99"]
    b.record("evaluate seg --label 99 (in neither mask)", "refuse", run(argv, [masks])[0])


def batch_cases(b: Battery) -> None:
    folder = b.root / "cohort"
    folder.mkdir()
    (folder / "bad.nii.gz").write_bytes(b"no")
    rows = "case_id,ct,pet\nc1,bad.nii.gz,bad.nii.gz\nc2,bad.nii.gz,bad.nii.gz\n"
    (folder / "m.csv").write_text(rows)
    argv = ["batch", "specimen", "--manifest", str(folder / "m.csv"), "--out", str(b.root / "cohort-out"), "--workers",
            "1"]  # fmt: skip
    b.record("batch where every case fails", "refuse", run(argv, [folder])[0])
    s = b.specimen
    rows = f'case_id,ct,pet,pet_info,note\nc1,{s}/ct.nii.gz,{s}/pet.nii.gz,{s}/truth.json,=HYPERLINK("x")\n'
    (folder / "m2.csv").write_text(rows, encoding="utf-8-sig")  # with the byte-order mark spreadsheets write
    out = b.root / "cohort-out2"
    outcome, _ = run(["batch", "specimen", "--manifest", str(folder / "m2.csv"), "--out", str(out), "--workers", "1"],
                     [folder, s])  # fmt: skip
    table = (out / "cohort.csv").read_text() if (out / "cohort.csv").is_file() else ""
    b.record("batch: BOM manifest, formula cell escaped", "result", outcome, "'=HYPERLINK" in table)


def main() -> None:
    print_header(__doc__ or "hostile_inputs")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="Work here and keep the cases (default: a temp dir).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="breastseg-hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    battery = Battery(root)
    for group in (specimen_cases, petct_cases, raster_cases, batch_cases):
        group(battery)
    kinds = [r[2] for r in battery.rows]
    print()
    print("| outcome | cases |")
    print("|---|---|")
    for kind in ("named error", "not assessable", "result", "traceback", "lost data"):
        print(f"| {kind} | {kinds.count(kind)} |")
    bad = [r for r in battery.rows if not r[4]]
    print(f"\n{len(battery.rows) - len(bad)} of {len(battery.rows)} cases as they must be")
    for name, expected, kind, detail, _ in bad:
        print(f"  BAD {name}: expected {expected}, got {kind} ({detail})")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
