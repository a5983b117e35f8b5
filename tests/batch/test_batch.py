"""Cohort runs: a 12-specimen phantom cohort through ``breastseg batch specimen`` locally, on a local process pool
and on a real Dask cluster (a scheduler and two workers on loopback) with one worker killed mid-run — every
case completes exactly once, with the same read-outs as the local run and the phantoms' true margin status.
Failures are recorded without stopping the run; reruns skip unchanged cases and retry failed ones."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from breastseg.batch.engine import run_batch
from breastseg.batch.manifest import read_manifest
from breastseg.batch.runners import PetctRunner, SpecimenRunner
from breastseg.cli.main import main
from breastseg.errors import InputError
from breastseg.phantoms.specimen_cohort import CohortConfig, specimen_margins, write_cohort
from tests.servers import dask_cluster

READOUTS = ("margin_status", "min_margin_mm", "closest_face", "tumour_volume_ml")


def _table(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["case_id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    cfg = CohortConfig(
        nst_patients=1,
        ilc_patients=0,
        dcis_patients=0,
        lamellae_per_patient=1,
        specimen_margins_mm=specimen_margins(12),
        shared_specimens=0,
        ct_spacing_mm=0.5,
        pet_spacing_mm=1.0,
    )
    return write_cohort(root, cfg)["specimens"]


@pytest.fixture(scope="module")
def local_run(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    assert main(["batch", "specimen", "--manifest", str(cohort), "--out", str(out), "--workers", "1"]) == 0
    return out


def test_local_run_reads_every_case_and_the_margin_table(local_run: Path, cohort: Path) -> None:
    table = _table(local_run / "cohort.csv")
    assert len(table) == 12 and all(r["status"] == "done" for r in table.values())
    for case_id, row in table.items():
        result = json.loads((local_run / case_id / "result.json").read_text())  # the single-case command's output
        assert row["margin_status"] == result["margin_status"]
        assert float(row["min_margin_mm"]) == pytest.approx(result["min_margin_mm"])
    summary = json.loads((local_run / "summary.json").read_text())
    truth = [r["ref_margin_status"] == "positive" for r in table.values()]
    called = [r["margin_status"] == "positive" for r in table.values()]
    tp = sum(t and c for t, c in zip(truth, called, strict=True))
    assert summary["margin_table"]["tp"] == tp and summary["margin_table"]["n"] == 12
    assert summary["margin_table"]["sensitivity"] == pytest.approx(tp / sum(truth))
    # every positive called positive, every negative of 2.5 mm or more negative; nearer ones the packaged threshold
    # (fitted on 0.2 mm phantoms) may call positive on these 0.5 mm voxels, where its mask reaches the surface
    assert all(c for t, c in zip(truth, called, strict=True) if t)
    wide = [float(r["ref_margin_mm"]) >= 2.5 for r in table.values()]
    assert not any(c for w, c in zip(wide, called, strict=True) if w) and sum(wide) >= 2


def test_a_rerun_skips_unchanged_cases_and_retries_failed_ones(local_run: Path, cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(local_run, out)
    runner = SpecimenRunner()
    cases = read_manifest(cohort, runner.path_columns, runner.required)
    again = run_batch(runner, cases, out)
    assert (again.ran, again.skipped) == (0, 12)
    # change one input, break another: one reruns, one fails with its reason, the rest are skipped
    changed = cases[3].inputs["pet_info"]
    doc = json.loads(changed.read_text())
    changed.write_text(json.dumps(doc, indent=1))  # same content, new bytes: a new hash
    broken = cases[5].inputs["ct"]
    saved = broken.read_bytes()
    broken.write_bytes(b"not a NIfTI")
    try:
        third = run_batch(runner, cases, out)
    finally:
        broken.write_bytes(saved)
    assert (third.ran, third.skipped, third.failed) == (2, 10, 1)
    failed = json.loads((out / cases[5].case_id / "case.json").read_text())
    assert failed["status"] == "failed" and str(broken) in failed["error"]
    assert _table(out / "cohort.csv")[cases[5].case_id]["status"] == "failed"
    fourth = run_batch(runner, cases, out)  # the failed case is retried, the others skipped
    assert (fourth.ran, fourth.skipped, fourth.failed) == (1, 11, 0)


def test_pool_of_two_gives_the_same_read_outs(local_run: Path, cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "pool"
    assert main(["batch", "specimen", "--manifest", str(cohort), "--out", str(out), "--workers", "2"]) == 0
    local, pooled = _table(local_run / "cohort.csv"), _table(out / "cohort.csv")
    assert {k: [r[c] for c in READOUTS] for k, r in pooled.items()} == {
        k: [r[c] for c in READOUTS] for k, r in local.items()
    }
    workers = {json.loads((out / k / "case.json").read_text())["worker"] for k in pooled}
    assert len(workers) == 2 and f"{os.uname().nodename}:{os.getpid()}" not in workers


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    with dask_cluster(tmp_path / "dask-logs", workers=2) as running:
        yield running


def test_dask_cluster_survives_a_killed_worker(
    cluster: tuple[str, list[subprocess.Popen[bytes]]], local_run: Path, cohort: Path, tmp_path: Path
) -> None:
    address, procs = cluster
    out = tmp_path / "dask"
    runner = SpecimenRunner()
    cases = read_manifest(cohort, runner.path_columns, runner.required)
    victim = procs[1]
    seen: list[str] = []

    def progress(record: dict[str, object]) -> None:
        seen.append(str(record["case_id"]))
        if len(seen) == 2 and victim.poll() is None:
            victim.send_signal(signal.SIGKILL)  # mid-run: the other worker must finish its cases

    result = run_batch(runner, cases, out, scheduler=address, progress=progress)
    assert victim.poll() is not None  # it really died during the run
    assert sorted(seen) == sorted(c.case_id for c in cases)  # every case reported exactly once
    assert result.failed == 0 and result.ran == 12
    local, remote = _table(local_run / "cohort.csv"), _table(out / "cohort.csv")
    assert {k: [r[c] for c in READOUTS] for k, r in remote.items()} == {
        k: [r[c] for c in READOUTS] for k, r in local.items()
    }
    workers = {json.loads((out / k / "case.json").read_text())["worker"] for k in remote}
    survivor = f"{os.uname().nodename}:{procs[2].pid}"
    assert survivor in workers and workers <= {survivor, f"{os.uname().nodename}:{victim.pid}"}


def test_petct_cohort_and_bad_manifests(tmp_path: Path) -> None:
    rows = []
    for seed in (0, 1):
        assert (
            main(["phantom", "petct", "--out", str(tmp_path / f"p{seed}"), "--seed", str(seed), "--lesions", "2"]) == 0
        )
        base = f"p{seed}/baseline"
        rows.append(f"pt{seed},{base}/pet.nii.gz,{base}/lesions.nii.gz,{base}/truth.json,{base}/liver.nii.gz")
    manifest = tmp_path / "scans.csv"
    manifest.write_text("case_id,pet,mask,pet_info,liver_mask\n" + "\n".join(rows) + "\n")
    runner = PetctRunner()
    cases = read_manifest(manifest, runner.path_columns, runner.required)
    result = run_batch(runner, cases, tmp_path / "out")
    assert result.failed == 0
    for case in cases:
        assert (tmp_path / "out" / case.case_id / "mip.png").is_file()  # as `petct biomarkers` writes it
        doc = json.loads((tmp_path / "out" / case.case_id / "biomarkers.json").read_text())
        row = _table(tmp_path / "out" / "cohort.csv")[case.case_id]
        assert int(row["lesion_count"]) == doc["lesion_count"] == 2
        assert float(row["mtv_ml"]) == pytest.approx(doc["mtv_ml"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    mtvs = sorted(float(r["mtv_ml"]) for r in _table(tmp_path / "out" / "cohort.csv").values())
    assert summary["mtv_ml"]["median"] == pytest.approx(sum(mtvs) / 2)
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,pet,mask\n../escape,p0/baseline/pet.nii.gz,p0/baseline/lesions.nii.gz\n")
    with pytest.raises(InputError, match=r"bad.csv, line 2: case_id '../escape'"):
        read_manifest(bad, runner.path_columns, runner.required)
    bad.write_text("case_id,pet,mask\na,p0/baseline/pet.nii.gz,missing.nii.gz\n")
    with pytest.raises(InputError, match=r"line 2: mask .*missing.nii.gz does not exist"):
        read_manifest(bad, runner.path_columns, runner.required)
    bad.write_text("case_id,pet\na,p0/baseline/pet.nii.gz\n")
    with pytest.raises(InputError, match=r"lacks columns \['mask'\]"):
        read_manifest(bad, runner.path_columns, runner.required)


def test_response_cohort_gives_the_roc_and_the_category_agreement(tmp_path: Path) -> None:
    rows = []
    for seed, response in enumerate(("CMR", "PMR", "SMD", "PMD")):
        patient = tmp_path / f"p{seed}"
        args = ["phantom", "petct", "--out", str(patient), "--seed", str(seed), "--response", response]
        assert main([*args, "--lesions", "2", "--ct-spacing-mm", "4", "--pet-spacing-mm", "6"]) == 0
        rows.append(f"pt{seed},p{seed}/baseline,p{seed}/followup,{response}")
    manifest = tmp_path / "patients.csv"
    manifest.write_text("case_id,baseline,followup,percist\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["batch", "response", "--manifest", str(manifest), "--out", str(out), "--workers", "2"]) == 0
    table = _table(out / "cohort.csv")
    summary = json.loads((out / "summary.json").read_text())
    for case_id, row in table.items():  # the table carries what each case's response.json says
        doc = json.loads((out / case_id / "response.json").read_text())
        assert row["percist"] == doc["percist"]["category"]
        assert float(row["delta_sul_peak"]) == pytest.approx(doc["change_percent"]["sul_peak"])
    matching = sum(r["percist"] == r["ref_percist"] for r in table.values())
    assert summary["category_agreement"] == {"n": 4, "matching": matching}
    roc = summary["response_analysis"]
    assert roc["responders"] == 2 and roc["non_responders"] == 2
    # AUC by hand: the share of (responder, non-responder) pairs where the responder's SULpeak fell more
    deltas = {r["ref_percist"]: float(r["delta_sul_peak"]) for r in table.values()}
    pairs = [(a, b) for a in ("CMR", "PMR") for b in ("SMD", "PMD")]
    auc = sum((deltas[a] < deltas[b]) + 0.5 * (deltas[a] == deltas[b]) for a, b in pairs) / len(pairs)
    assert roc["biomarkers"]["sul_peak"]["auc"] == pytest.approx(auc)


def test_petct_cohort_agreement_with_manual_masks(tmp_path: Path) -> None:
    import numpy as np
    from scipy import ndimage

    from breastseg.io import read_image, write_image

    rows = []
    for seed in (0, 1, 2):
        base = tmp_path / f"p{seed}" / "baseline"
        assert (
            main(["phantom", "petct", "--out", str(tmp_path / f"p{seed}"), "--seed", str(seed), "--lesions", "2"]) == 0
        )
        truth = read_image(base / "lesions.nii.gz")
        grown = ndimage.binary_dilation(truth.array > 0, iterations=1 + seed % 2)  # a generous reader
        write_image(truth.with_array(grown.astype(np.uint8)), base / "manual.nii.gz")
        rel = f"p{seed}/baseline"
        rows.append(f"pt{seed},{rel}/pet.nii.gz,{rel}/lesions.nii.gz,{rel}/truth.json,{rel}/manual.nii.gz")
    manifest = tmp_path / "scans.csv"
    manifest.write_text("case_id,pet,mask,pet_info,manual_mask\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["batch", "petct", "--manifest", str(manifest), "--out", str(out)]) == 0
    table = _table(out / "cohort.csv")
    auto = np.array([float(r["mtv_ml"]) for r in table.values()])
    manual = np.array([float(r["mtv_ml_manual"]) for r in table.values()])
    assert np.all(manual > auto)  # dilated masks are bigger
    # Lin's concordance by hand (population moments)
    ccc = (
        2
        * np.mean((auto - auto.mean()) * (manual - manual.mean()))
        / (auto.var() + manual.var() + (auto.mean() - manual.mean()) ** 2)
    )
    agreement = json.loads((out / "summary.json").read_text())["agreement"]
    assert agreement["mtv_ml"]["lins_ccc"] == pytest.approx(ccc)
    assert agreement["mtv_ml"]["n"] == 3
