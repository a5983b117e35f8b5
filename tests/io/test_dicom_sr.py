"""DICOM outputs for the PACS: TID 1500 SR, SEG and secondary capture of a specimen assessment and of PET
biomarkers — valid by dciodvfy, codes as PS3.16 lists them, every number equal to the JSON read-out and to an
independent count on the phantom's truth, every segment on its source slices."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from breastseg.cli.main import cli, main
from breastseg.io import read_image
from breastseg.io.dicom import read_dicom_series
from breastseg.io.dicom_sr import CODES, UNITS, direction_code
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.workflows.specimen.pipeline import run_assessment
from tests.servers import dciodvfy


def _code(item: Any) -> tuple[str, str]:
    value = item.CodeValue if "CodeValue" in item else item.LongCodeValue  # codes over 16 characters
    return str(value), str(item.CodingSchemeDesignator)


def _groups(sr: pydicom.Dataset) -> list[dict[str, Any]]:
    """Measurement groups read with plain pydicom (not highdicom's parser): tracking id, NUM items, CODE items,
    referenced segment."""
    (measurements,) = [i for i in sr.ContentSequence if _code(i.ConceptNameCodeSequence[0]) == ("126010", "DCM")]
    out = []
    for group in measurements.ContentSequence:
        g: dict[str, Any] = {"nums": [], "codes": {}, "segment": None, "region": None}
        for item in group.ContentSequence:
            name = _code(item.ConceptNameCodeSequence[0])
            if item.ValueType == "TEXT" and name == ("112039", "DCM"):
                g["tracking_id"] = str(item.TextValue)
            elif item.ValueType == "NUM":
                mv = item.MeasuredValueSequence[0]
                mods = {
                    _code(m.ConceptNameCodeSequence[0]): m
                    for m in item.get("ContentSequence", [])
                    if "ConceptCodeSequence" in m
                }
                derivation = mods.get(("121401", "DCM"))
                uncertainty = {
                    _code(m.ConceptNameCodeSequence[0]): float(m.MeasuredValueSequence[0].NumericValue)
                    for m in item.get("ContentSequence", [])
                    if m.ValueType == "NUM" and m.RelationshipType == "HAS PROPERTIES"
                }
                site = mods.get(("363698007", "SCT"))
                g["nums"].append(
                    {
                        "concept": name,
                        "value": float(mv.NumericValue),
                        "unit": _code(mv.MeasurementUnitsCodeSequence[0]),
                        "derivation": _code(derivation.ConceptCodeSequence[0]) if derivation else None,
                        "site": _code(site.ConceptCodeSequence[0]) if site else None,
                        "site_modifier": _code(site.ContentSequence[0].ConceptCodeSequence[0]) if site else None,
                        "uncertainty": uncertainty,
                    }
                )
            elif item.ValueType == "CODE":
                g["codes"][name] = _code(item.ConceptCodeSequence[0])
            elif item.ValueType == "SCOORD3D":
                points = np.asarray(item.GraphicData, dtype=float).reshape(-1, 3)
                g["region"] = (str(item.GraphicType), points, str(item.ReferencedFrameOfReferenceUID))
            elif item.ValueType == "IMAGE" and name == ("121191", "DCM"):
                ref = item.ReferencedSOPSequence[0]
                g["segment"] = (str(ref.ReferencedSOPInstanceUID), int(ref.ReferencedSegmentNumber))
        out.append(g)
    return out


def _num(group: dict[str, Any], concept: tuple[str, str], derivation: tuple[str, str] | None = None) -> dict[str, Any]:
    (found,) = [n for n in group["nums"] if n["concept"] == concept and n["derivation"] == derivation]
    return found


def _voxel_at(headers: list[Any], point: np.ndarray) -> tuple[int, int, int]:
    """(slice, row, column) of the CT voxel holding an LPS point, from the DICOM headers alone (Image Position /
    Orientation (Patient), Pixel Spacing) — a hand calculation, not breastseg's geometry."""
    row_dir = np.asarray(headers[0].ImageOrientationPatient[:3], dtype=float)
    col_dir = np.asarray(headers[0].ImageOrientationPatient[3:], dtype=float)
    normal = np.cross(row_dir, col_dir)
    positions = np.array([np.asarray(h.ImagePositionPatient, dtype=float) for h in headers])
    k = int(np.argmin(np.abs(positions @ normal - point @ normal)))
    offset = point - positions[k]
    row_spacing, col_spacing = (float(v) for v in headers[k].PixelSpacing)
    return k, round(float(offset @ col_dir) / row_spacing), round(float(offset @ row_dir) / col_spacing)


def _no_dciodvfy_errors(path: Path, iod: str) -> None:
    out = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert not [line for line in report.splitlines() if line.startswith("Error")], report
    assert iod in report


def test_codes_are_those_of_the_dicom_standard() -> None:
    # PS3.16 values, typed from the standard's tables (not read from pydicom, which CODES is built from)
    expected = {
        "volume": ("118565006", "SCT"),
        "distance": ("121206", "DCM"),
        "suv": ("126400", "DCM"),
        "peak": ("126031", "DCM"),
        "maximum": ("56851009", "SCT"),
        "metabolic_volume": ("126032", "DCM"),
        "total_lesion_glycolysis": ("126033", "DCM"),
        "margin_status": ("372249001", "SCT"),
        "positive": ("10828004", "SCT"),
        "negative": ("260385009", "SCT"),
    }
    for key, (value, scheme) in expected.items():
        assert (CODES[key].value, CODES[key].scheme_designator) == (value, scheme), key
    assert UNITS["SUVbw"].value == "g/ml{SUVbw}" and UNITS["SUL"].value == "g/ml{SUVlbm(Janma)}"
    assert (direction_code("Superior").value, direction_code("Superior").scheme_designator) == ("264217000", "SCT")
    assert direction_code("deep-lateral").scheme_designator == "99BRSEG"


@pytest.fixture(scope="module")
def specimen_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Path, Any]:
    root = tmp_path_factory.mktemp("sr")
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(seed=2, ct_spacing_mm=0.4, pet_spacing_mm=0.8, tumour_diameter_mm=8, margin_mm=1.0)
    )
    folders = write_specimen_dicom(ph, root / "dicom")
    result = run_assessment(folders["ct"], folders["pet"], root / "assessment", dicom_out=root / "pacs").to_json()
    return root, result, folders["ct"], ph


def test_specimen_sr_carries_the_read_out(specimen_outputs: tuple[Path, dict[str, Any], Path, Any]) -> None:
    root, result, _ct_dir, _ph = specimen_outputs
    assert sorted(p.name for p in (root / "pacs").iterdir()) == ["report.dcm", "seg.dcm", "sr.dcm"]
    sr = pydicom.dcmread(root / "pacs" / "sr.dcm")
    seg = pydicom.dcmread(root / "pacs" / "seg.dcm")
    on_disk = json.loads((root / "assessment" / "result.json").read_text())
    assert on_disk["min_margin_mm"] == result["min_margin_mm"] and result["min_margin_mm"] is not None
    tumour, specimen, _faces, _approach = _groups(sr)
    assert tumour["tracking_id"] == "tumour" and specimen["tracking_id"] == "specimen"
    assert tumour["segment"] == (seg.SOPInstanceUID, 1) and specimen["segment"] == (seg.SOPInstanceUID, 2)
    margin = _num(tumour, ("121206", "DCM"), ("255605001", "SCT"))
    assert margin["value"] == pytest.approx(result["min_margin_mm"]) and margin["unit"] == ("mm", "UCUM")
    assert margin["site"] == ("410679008", "SCT")  # the specimen's surface …
    face_codes = {"superior": "264217000", "inferior": "261089000", "left": "7771000", "right": "24028007"}
    face_codes |= {"anterior": "255549009", "posterior": "255551008"}
    assert margin["site_modifier"] == (face_codes[result["closest_face"]], "SCT")  # … at the closest face
    # the margin's interval as its range of lower / upper measurement uncertainty (SCT 371885007 / 371886008)
    low, high = result["margin_interval_mm"]
    assert low <= result["min_margin_mm"] and high is not None and high >= result["min_margin_mm"]
    assert margin["uncertainty"][("371885007", "SCT")] == pytest.approx(result["min_margin_mm"] - low, abs=1e-4)
    assert margin["uncertainty"][("371886008", "SCT")] == pytest.approx(high - result["min_margin_mm"], abs=1e-4)
    assert _num(tumour, ("118565006", "SCT"))["value"] == pytest.approx(result["tumour_volume_ml"])
    sul_max = _num(tumour, ("126400", "DCM"), ("56851009", "SCT"))
    assert sul_max["value"] == pytest.approx(result["tumour_sul_max"])
    assert sul_max["unit"] == ("g/ml{SUVlbm(Janma)}", "UCUM")
    status = {"positive": ("10828004", "SCT"), "negative": ("260385009", "SCT")}[result["margin_status"]]
    assert tumour["codes"][("372249001", "SCT")] == status
    # the rule the status was called by: DCM 122411 "Threshold Value", 0.1 mm as in the study
    rule = _num(tumour, ("122411", "DCM"))
    assert rule["value"] == pytest.approx(0.1) and rule["unit"] == ("mm", "UCUM")
    assert _num(specimen, ("118565006", "SCT"))["value"] == pytest.approx(result["specimen_volume_ml"])
    # highdicom's own parser agrees on the template and the referenced segment
    report = hd.sr.Comprehensive3DSR.from_dataset(sr)
    (volumetric,) = [
        g for g in report.content.get_volumetric_roi_measurement_groups() if g.tracking_identifier == "tumour"
    ]
    assert volumetric.roi is None and volumetric.referenced_segment.referenced_segment_numbers == [1]  # type: ignore[union-attr]
    assert sr.StudyInstanceUID == seg.StudyInstanceUID


def test_specimen_sr_has_each_face_and_the_closest_approach_in_the_ct_frame(
    specimen_outputs: tuple[Path, dict[str, Any], Path, Any],
) -> None:
    root, result, ct_dir, _ph = specimen_outputs
    sr = pydicom.dcmread(root / "pacs" / "sr.dcm")
    faces, approach = _groups(sr)[2:]
    assert faces["tracking_id"] == "margin per face" and faces["segment"] is None
    by_face = {n["site_modifier"]: n["value"] for n in faces["nums"]}
    assert all(n["concept"] == ("121206", "DCM") and n["derivation"] == ("255605001", "SCT") for n in faces["nums"])
    expected = {
        (direction_code(face).value, direction_code(face).scheme_designator): mm
        for face, mm in result["per_face_margin_mm"].items()
        if mm is not None
    }
    assert len(expected) == 6 and by_face == pytest.approx(expected)
    # the closest approach: a two-point SCOORD3D line in the CT's frame of reference, from tumour to outside
    ct = read_dicom_series(ct_dir)
    graphic_type, points, frame = approach["region"]
    assert approach["tracking_id"] == "closest approach" and graphic_type == "POLYLINE"
    assert frame == str(ct.headers[0].FrameOfReferenceUID)
    np.testing.assert_allclose(points, [result["closest_point_mm"], result["surface_point_mm"]], atol=1e-3)
    # where those points lie, found from the CT headers by hand: the first on the SEG's tumour, the second outside
    # the SEG's specimen, as far apart as the margin plus at most one voxel
    seg = hd.seg.segread(root / "pacs" / "seg.dcm")
    uids = [str(h.SOPInstanceUID) for h in ct.headers]
    masks = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2]) > 0
    tumour_voxel, outside_voxel = _voxel_at(ct.headers, points[0]), _voxel_at(ct.headers, points[1])
    assert masks[(*tumour_voxel, 0)] and masks[(*tumour_voxel, 1)]
    assert not masks[(*outside_voxel, 1)]
    # each face's margin is measured from its surface voxels: the closest face's lies within a voxel of the margin
    assert abs(min(by_face.values()) - result["min_margin_mm"]) <= np.linalg.norm(ct.image.spacing)
    length = float(np.linalg.norm(points[1] - points[0]))
    assert result["min_margin_mm"] <= length + 1e-6 <= result["min_margin_mm"] + np.linalg.norm(ct.image.spacing)


def test_specimen_seg_matches_the_nifti_masks_slice_by_slice(
    specimen_outputs: tuple[Path, dict[str, Any], Path, Any],
) -> None:
    root, _result, ct_dir, ph = specimen_outputs
    ct = read_dicom_series(ct_dir)
    seg = hd.seg.segread(root / "pacs" / "seg.dcm")
    uids = [str(h.SOPInstanceUID) for h in ct.headers]
    back = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    tumour = read_image(root / "assessment" / "tumour_mask.nii.gz").array > 0
    specimen = read_image(root / "assessment" / "specimen_mask.nii.gz").array > 0
    np.testing.assert_array_equal(back[..., 0] > 0, tumour)
    np.testing.assert_array_equal(back[..., 1] > 0, specimen)
    # and the predicted tumour lies on the phantom's true tumour (the threshold method over-segments, so coverage,
    # not Dice); the same mask flipped head to foot would not
    truth = np.asarray(ph.images["tumour"].array) > 0
    pred = back[..., 0] > 0
    assert np.sum(truth & pred) / truth.sum() > 0.8
    assert np.sum(truth & pred[::-1]) / truth.sum() < 0.5


def test_specimen_dicom_outputs_are_valid(specimen_outputs: tuple[Path, dict[str, Any], Path, Any]) -> None:
    root = specimen_outputs[0]
    _no_dciodvfy_errors(root / "pacs" / "sr.dcm", "Comprehensive3DSR")
    _no_dciodvfy_errors(root / "pacs" / "seg.dcm", "Segmentation")
    _no_dciodvfy_errors(root / "pacs" / "report.dcm", "SCImage")
    sc = pydicom.dcmread(root / "pacs" / "report.dcm")
    png = np.asarray(PILImage.open(root / "assessment" / "figures" / "closest_point.png").convert("RGB"))
    np.testing.assert_array_equal(sc.pixel_array, png)


def test_dcmtk_reads_the_specimen_sr_as_breastseg_meant_it(
    specimen_outputs: tuple[Path, dict[str, Any], Path, Any],
) -> None:
    """An independent parser (DCMTK's dsrdump, as PACS and viewers built on DCMTK read SR): the tree is read
    without a warning, with the margin, the rule, the six faces and the closest approach in 3D."""
    from tests.servers import dcmtk_tool

    root, result, _ct_dir, _ph = specimen_outputs
    done = subprocess.run([dcmtk_tool("dsrdump"), str(root / "pacs" / "sr.dcm")], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    text = done.stdout
    assert text.startswith("Comprehensive 3D SR Document")
    assert f'(,,"Distance")="{result["min_margin_mm"]:.4f}'.rstrip("0") in text
    assert '(,,"Threshold Value")="0.1" (mm,UCUM' in text
    assert text.count('Tracking Identifier")="margin per face"') == 1
    faces = text.split('"margin per face"')[1].split('Tracking Identifier")=')[0]
    assert faces.count('(,,"Distance")=') == 6
    assert "SCOORD3D" in text and "(POLYLINE," in text


def test_dicom_out_needs_a_dicom_ct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case"
    assert main(["phantom", "specimen", "--out", str(case), "--seed", "3"]) == 0
    code = main(
        ["specimen", "assess", "--ct", str(case / "ct.nii.gz"), "--pet", str(case / "pet.nii.gz"), "--pet-info",
         str(case / "truth.json"), "--out", str(tmp_path / "a"), "--dicom-out", str(tmp_path / "d")],
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "ct.nii.gz" in err and "needs the CT as DICOM" in err
    assert not (tmp_path / "d").exists() and not (tmp_path / "a").exists()


def test_pet_biomarkers_sr_per_lesion_and_per_scan(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli, ["phantom", "petct", "--out", str(tmp_path / "p"), "--seed", "1", "--lesions", "3", "--dicom"]
    )
    assert res.exit_code == 0, res.output
    base = tmp_path / "p" / "baseline"
    res = runner.invoke(
        cli,
        ["petct", "biomarkers", "--pet", str(base / "dicom" / "pet"), "--mask", str(base / "lesions.nii.gz"),
         "--out", str(tmp_path / "bio"), "--dicom-out", str(tmp_path / "pacs")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "bio" / "biomarkers.json").read_text())
    sr = pydicom.dcmread(tmp_path / "pacs" / "sr.dcm")
    seg = hd.seg.segread(tmp_path / "pacs" / "seg.dcm")
    scan, *groups = _groups(sr)
    lesions, centres = groups[: doc["lesion_count"]], groups[doc["lesion_count"] :]
    assert sr.ContentSequence and _code(sr.ConceptNameCodeSequence[0]) == ("126003", "DCM")  # PET Measurement Report
    assert scan["segment"] is None and len(lesions) == doc["lesion_count"] == 3
    # independent reference: the phantom's own lesion labels, counted on the PET grid
    truth = read_image(base / "lesions.nii.gz")
    voxel_ml = float(np.prod(truth.spacing)) / 1000.0
    assert _num(scan, ("126032", "DCM"))["value"] == pytest.approx((truth.array > 0).sum() * voxel_ml)
    assert _num(scan, ("126033", "DCM"))["value"] == pytest.approx(doc["tlg"])
    assert _num(scan, ("126033", "DCM"))["unit"] == ("g", "UCUM")
    assert _num(scan, ("126400", "DCM"), ("126031", "DCM"))["value"] == pytest.approx(doc["sul_peak"])
    assert _num(scan, ("126400", "DCM"), ("56851009", "SCT"))["value"] == pytest.approx(doc["suv_max"])
    pet = read_dicom_series(base / "dicom" / "pet")
    uids = [str(h.SOPInstanceUID) for h in pet.headers]
    for k, (group, row) in enumerate(zip(lesions, doc["lesions"], strict=True), start=1):
        assert group["segment"] == (seg.SOPInstanceUID, k)
        assert _num(group, ("126032", "DCM"))["value"] == pytest.approx(row["volume_ml"])
        assert _num(group, ("126400", "DCM"), ("126031", "DCM"))["value"] == pytest.approx(row["sul_peak"])
        mask = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[k])[..., 0] > 0
        assert mask.sum() * voxel_ml == pytest.approx(row["volume_ml"])
        labels_under = np.unique(truth.array[mask])
        assert len(labels_under) == 1 and labels_under[0] > 0  # one whole true lesion, nothing else
        assert mask.sum() == (truth.array == labels_under[0]).sum()
        # its centre: an SCOORD3D point in the PET's frame of reference, on that same true lesion (the voxel found
        # from the DICOM headers by hand)
        centre = centres[k - 1]
        assert centre["tracking_id"] == f"lesion {k} centre" and centre["segment"] is None
        graphic_type, points, frame = centre["region"]
        assert graphic_type == "POINT" and frame == str(pet.headers[0].FrameOfReferenceUID)
        assert truth.array[_voxel_at(list(pet.headers), points[0])] == labels_under[0]
    _no_dciodvfy_errors(tmp_path / "pacs" / "sr.dcm", "Comprehensive3DSR")
    _no_dciodvfy_errors(tmp_path / "pacs" / "seg.dcm", "Segmentation")
