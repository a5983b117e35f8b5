"""Breast DCE-MRI and ultrasound studies through the DICOM service with real peers (DCMTK storescu as the scanner,
Orthanc as the PACS): routed by their series alone, segmented by the configured model, and back in the PACS as
SEG + SR + report (MRI) or SEG + overlay per image (ultrasound) — valid by dciodvfy, the SEG on the images the
mask was made on, the SR's numbers the job's. The viewer shows both in headless Chromium. Without a model
configured each is refused by name; an MR study without a dynamic series is refused, never guessed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
import torch

from breastseg.io import read_image
from breastseg.io.dicom_write import StudyIdentity, write_dicom_series, write_dynamic_series, write_ultrasound_image
from breastseg.phantoms.dce import DcePhantomConfig, make_dce_phantom
from breastseg.service.jobstore import JobStore
from breastseg.service.receiver import ListenerConfig
from breastseg.service.routing import MRI, ULTRASOUND, route_study
from breastseg.service.sender import Destination
from breastseg.service.server import DicomService, ServiceConfig
from breastseg.service.worker import WorkerConfig, study_problem
from breastseg.workflows.mri.inputs import MriPreprocessing
from breastseg.workflows.mri.network import MriModel, MriRecipe
from breastseg.workflows.ultrasound.model import default_model_path
from tests.servers import dciodvfy, free_port, orthanc_server
from tests.service.test_dicom_service import SCANNER, _job_of, storescu, study_uid_of, wait_for
from tests.service.test_web import browse, web_server
from tests.workflows.ultrasound.conftest import speckle_scene

TIMES_S = (0.0, 90.0, 180.0, 270.0)  # pre-contrast, then three post-contrast phases
US_SERIES = "1.2.826.0.1.3680043.8.498.777"
SHAPE = (16, 64, 72)  # slices, rows, columns of the DCE phantom (3 × 1.2 × 1.2 mm voxels)


def everything_enhancing_model(path: Path) -> Path:
    """An MRI model whose network says "tumour" everywhere (zero weights, the head's bias for the tumour class):
    the tumour is then the breast region the post-processing keeps — a mask known to be found, to test the
    mechanics of DICOM in and out, not accuracy."""
    recipe = MriRecipe(first_channels=4)
    net = recipe.net_config()
    state = {k: torch.zeros_like(v) for k, v in net.build().state_dict().items()}
    state["head.bias"] = torch.tensor([-4.0, 4.0])
    model = MriModel(net, MriPreprocessing(1.0, "none"), recipe, state, {"title": "everything enhancing"})
    return model.save(path)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A DCE exam as one dynamic MR series (with a static T2-like series beside it), and two ultrasound images of
    one series (a dark lesion in the first) — as DICOM; the MRI model."""
    root = tmp_path_factory.mktemp("mri_us")
    ph = make_dce_phantom(DcePhantomConfig(seed=3, post_times_s=TIMES_S[1:], shape=SHAPE, tumour_radius_mm=6.0))
    mr_study = StudyIdentity(patient_id="MR-3", patient_name="Phantom^Breast", accession_number="ACC-MR3")
    phases = [ph.images["t1"]] + [ph.images[f"t1c_{k}"] for k in range(1, len(TIMES_S))]
    write_dynamic_series(phases, TIMES_S, root / "mr" / "dce", study=mr_study, series_number=5)
    write_dicom_series(ph.images["t1"], root / "mr" / "t2", modality="MR", study=mr_study, series_number=2)
    us_study = StudyIdentity(patient_id="US-1", patient_name="Phantom^Ultrasound", accession_number="ACC-US1")
    for i, lesion in enumerate([(110, 150, 40), None]):
        image, _ = speckle_scene(40 + i, (240, 320), lesion)
        path = root / "us" / f"im{i}.dcm"
        write_ultrasound_image(image, path, (0.1, 0.1), study=us_study, series_uid=US_SERIES, instance_number=i + 1)
    return {"mr": root / "mr", "us": root / "us", "model": everything_enhancing_model(root / "mri.pt")}


def test_studies_are_routed_by_their_series_and_refused_without_a_model(
    studies: dict[str, Path], tmp_path: Path
) -> None:
    mr = route_study(studies["mr"])
    assert mr.workflow == MRI and mr.phases == len(TIMES_S)
    assert mr.series[0].n_instances == SHAPE[0] * len(TIMES_S)  # the dynamic series, not the static one
    us = route_study(studies["us"])
    assert us.workflow == ULTRASOUND and sum(s.n_instances for s in us.series) == 2
    problem = study_problem(studies["mr"], WorkerConfig(tmp_path))
    assert problem is not None and "4 phases" in problem and "--mri-model" in problem
    problem = study_problem(studies["us"], WorkerConfig(tmp_path))
    assert problem is not None and "2 images" in problem and "--ultrasound-model" in problem
    configured = WorkerConfig(tmp_path, mri_model=studies["model"], ultrasound_model=default_model_path())
    assert study_problem(studies["mr"], configured) is None and study_problem(studies["us"], configured) is None
    # only the static series: no dynamic series to read — refused by name
    assert "no dynamic (DCE) MR series" in str(study_problem(studies["mr"] / "t2", configured))


def _series(pacs_series: list[dict], modality: str) -> list[dict]:
    return [s for s in pacs_series if s["MainDicomTags"]["Modality"] == modality]


def _valid(path: Path) -> None:
    out = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=300)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, (path.name, errors[:5])


def _numbers(sr: pydicom.Dataset) -> dict[str, float]:
    group = sr.ContentSequence[-1].ContentSequence[0]
    return {
        item.ConceptNameCodeSequence[0].CodeMeaning: float(item.MeasuredValueSequence[0].NumericValue)
        for item in group.ContentSequence
        if item.ValueType == "NUM"
    }


def test_mri_and_ultrasound_studies_come_back_to_the_pacs(studies: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    port = free_port()
    with orthanc_server(tmp_path / "orthanc") as pacs:
        config = ServiceConfig(
            listener=ListenerConfig(store, port=port, allowed_aes=(SCANNER,)),
            worker=WorkerConfig(
                store, Destination.parse(pacs.node), mri_model=studies["model"], ultrasound_model=default_model_path()
            ),
            quiet_s=1.0,
            poll_s=0.2,
        )
        svc = DicomService(config, JobStore(store / "jobs.sqlite"))
        svc.start()
        try:
            done = {}
            for name in ("mr", "us"):
                study = study_uid_of(studies[name])
                assert storescu(studies[name], port).returncode == 0
                job = wait_for(f"the {name} job", lambda s=study: _job_of(svc.jobs, s, ("done", "failed")), 240)
                assert job.state == "done", job.error
                done[name] = (job, study)
            mr_job, mr_study = done["mr"]
            us_job, us_study = done["us"]
            # what the PACS receives: SEG, SR and report of the MRI; a SEG per ultrasound image with a lesion,
            # an SR and an overlay per image
            mr_series = wait_for("MRI results", lambda: _complete(pacs.series_of_study(mr_study), 3))
            lesions = us_job.summary["lesions_found"]
            us_series = wait_for(
                "ultrasound results", lambda: _complete(pacs.series_of_study(us_study), lesions + 2 + 2)
            )
            _check_mri(mr_job, mr_series, pacs, studies, store, tmp_path)
            _check_ultrasound(us_job, us_series, pacs, store, tmp_path)
        finally:
            svc.stop()
    _the_viewer_shows_both(store, mr_job.id, us_job.id, tmp_path)


def _complete(series: list[dict], total: int) -> list[dict]:
    return series if len(series) >= total else []


def _fetch(pacs, series: dict, path: Path) -> pydicom.Dataset:  # type: ignore[no-untyped-def]
    path.write_bytes(pacs.file(series["Instances"][0]))
    _valid(path)
    return pydicom.dcmread(path)


def _check_mri(job, series, pacs, studies, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = json.loads((store / "results" / str(job.id) / "mri" / "result.json").read_text())
    assert job.summary["workflow"] == MRI and job.summary["tumour_found"] is True and result["tumour_found"]
    (seg_series,) = _series(series, "SEG")
    (sr_series,) = _series(series, "SR")
    seg = _fetch(pacs, seg_series, tmp_path / "mri-seg.dcm")
    sr = _fetch(pacs, sr_series, tmp_path / "mri-sr.dcm")
    assert len(series) == 3
    # the SEG is on the first post-contrast phase: every frame's source instance is one of phase 2's
    phase2 = {
        str(ds.SOPInstanceUID)
        for f in (studies["mr"] / "dce" / "phase_1").glob("*.dcm")
        if (ds := pydicom.dcmread(f, stop_before_pixels=True)).TemporalPositionIdentifier == 2
    }
    assert len(phase2) == SHAPE[0]
    sources = {
        str(frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        for frame in seg.PerFrameFunctionalGroupsSequence
    }
    assert sources and sources <= phase2
    # the SEG's voxels are tumour.nii.gz's (the mask on the first post-contrast grid), frame by frame
    tumour = read_image(store / "results" / str(job.id) / "mri" / "tumour.nii.gz").array > 0
    pixels = seg.pixel_array.reshape(-1, *SHAPE[1:]) > 0
    slices = []
    for k, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        z = round(float(frame.PlanePositionSequence[0].ImagePositionPatient[2]) / 3.0)  # origin 0, 3 mm slices
        assert np.array_equal(pixels[k], tumour[z]), z
        slices.append(z)
    assert sorted(slices) == [z for z in range(SHAPE[0]) if tumour[z].any()]  # every tumour slice, no other
    numbers = _numbers(sr)
    assert numbers["Volume"] == pytest.approx(job.summary["volume_ml"], rel=1e-9)
    assert numbers["Long axis"] == pytest.approx(job.summary["longest_diameter_mm"], rel=1e-9)
    assert str(sr.PatientID) == "MR-3" and str(sr.AccessionNumber) == "ACC-MR3"
    # the kinetic curve as the standard code of its type (DCM 130597 persistent, 130598 plateau, 130599 washout)
    group = sr.ContentSequence[-1].ContentSequence[0]
    (curve,) = [i.ConceptCodeSequence[0].CodeValue for i in group.ContentSequence if i.ValueType == "CODE"
                and i.ConceptNameCodeSequence[0].CodeMeaning == "Kinetic curve type"]  # fmt: skip
    expected = {"persistent": "130597", "plateau": "130598", "washout": "130599"}[job.summary["curve_type"]]
    assert curve == expected


def _check_ultrasound(job, series, pacs, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary = json.loads((store / "results" / str(job.id) / "ultrasound" / "summary.json").read_text())
    images = summary["images"]
    assert job.summary["images"] == len(images) == 2
    found = [im for im in images if im["lesion_found"]]
    assert job.summary["lesions_found"] == len(found)
    segs = _series(series, "SEG")
    assert len(segs) == len(found)  # a SEG per image with a lesion, none for an image without
    assert len(series) == len(found) + 2 + 2  # the SEGs, an SR and an overlay per image
    assert len(_series(series, "SR")) == len(images)
    for k, s in enumerate(_series(series, "SR")):
        sr = _fetch(pacs, s, tmp_path / f"us-sr{k}.dcm")
        image = next(
            im
            for im in images
            if Path(im["image"]).stem
            == str(
                sr.CurrentRequestedProcedureEvidenceSequence[0]
                .ReferencedSeriesSequence[0]
                .ReferencedSOPSequence[0]
                .ReferencedSOPInstanceUID
            )
        )
        numbers = _numbers(sr)
        assert numbers["Peak lesion probability"] == pytest.approx(image["peak_probability"], abs=1e-4)
        if image["lesion_found"]:  # the area as the job's JSON gives it (0.1 × 0.1 mm pixels: px / 100)
            assert numbers["Area"] == pytest.approx(image["area_mm2"], abs=1e-3)
            assert numbers["Area"] == pytest.approx(image["area_px"] * 0.01, rel=1e-9)
        else:
            assert "Area" not in numbers
    for k, s in enumerate(segs):
        seg = _fetch(pacs, s, tmp_path / f"us-seg{k}.dcm")
        source = str(seg.SourceImageSequence[0].ReferencedSOPInstanceUID)
        image = next(im for im in found if Path(im["image"]).stem == source)
        # the SEG's pixels are the mask PNG's, pixel for pixel
        from PIL import Image as PILImage

        mask = np.asarray(PILImage.open(store / "results" / str(job.id) / "ultrasound" / image["mask"])) > 0
        assert np.array_equal(seg.pixel_array.reshape(mask.shape) > 0, mask)
        assert image["area_px"] == int(mask.sum())


def _the_viewer_shows_both(store: Path, mri_job: int, us_job: int, tmp_path: Path) -> None:
    with web_server(store) as url:
        result = json.loads((store / "results" / str(mri_job) / "mri" / "result.json").read_text())
        dom = browse(f"{url}/jobs/{mri_job}", tmp_path / "x.png", dom=True)
        assert "breast DCE-MRI study" in dom and "ACC-MR3" in dom
        assert f"tumour {result['tumour']['volume_ml']:.2f} ml</div>" in dom
        assert f"{result['tumour']['longest_diameter_mm']:.1f} mm" in dom
        report = httpx.get(f"{url}/jobs/{mri_job}/files/mri/report.png")
        assert report.status_code == 200 and report.headers["content-type"] == "image/png"
        images = json.loads((store / "results" / str(us_job) / "ultrasound" / "summary.json").read_text())["images"]
        dom = browse(f"{url}/jobs/{us_job}", tmp_path / "x.png", dom=True)
        table = dom.split('id="images"')[1].split("</table>")[0]
        assert table.count("<tr>") == len(images) + 1
        for k, image in enumerate(images):
            overlay = httpx.get(f"{url}/jobs/{us_job}/ultrasound/{k}/overlay.png")
            expected = (store / "results" / str(us_job) / "ultrasound" / image["overlay"]).read_bytes()
            assert overlay.status_code == 200 and overlay.content == expected
        assert httpx.get(f"{url}/jobs/{us_job}/ultrasound/{len(images)}/overlay.png").status_code == 404
        assert httpx.get(f"{url}/jobs/{us_job}/ultrasound/0/secret.png").status_code == 404
        listing = httpx.get(url).text
        assert f"lesion in {sum(i['lesion_found'] for i in images)} of 2 images" in listing
        assert "breastseg jobs" in listing and "MRI network" in listing


def test_the_ultrasound_model_option_takes_a_file_or_the_packaged_one(tmp_path: Path) -> None:
    import click

    from breastseg.cli.serve import _ultrasound_model_path

    assert _ultrasound_model_path("packaged") == default_model_path()
    assert _ultrasound_model_path(None) is None
    given = tmp_path / "m.pt"
    given.touch()
    assert _ultrasound_model_path(str(given)) == given
    with pytest.raises(click.BadParameter, match="no such model file"):
        _ultrasound_model_path(str(tmp_path / "missing.pt"))


def test_two_dynamic_series_of_as_many_phases_are_refused_not_guessed(tmp_path: Path) -> None:
    from breastseg.image import Image
    from breastseg.service.routing import StudyRefused

    rng = np.random.default_rng(1)
    study = StudyIdentity(patient_id="MR-9")
    for name in ("dce_a", "dce_b"):
        phases = [Image(rng.uniform(1, 9, (3, 4, 4)).astype(np.float32), (3.0, 1.0, 1.0), modality="MR")
                  for _ in range(3)]  # fmt: skip
        write_dynamic_series(phases, [0.0, 60.0, 120.0], tmp_path / name, study=study)
    with pytest.raises(StudyRefused, match="2 dynamic MR series of 3 phases"):
        route_study(tmp_path)
