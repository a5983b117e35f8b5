"""Outputs never destroy anything: the output-folder checks and the folder commit, through the real commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import breastseg.io.outputs as outputs
from breastseg.cli.main import main
from breastseg.errors import InputError
from breastseg.io.atomic import MARKER_NAME, atomic_path, read_marker, remove_stale_temporaries
from breastseg.io.outputs import prepare_output_file, prepare_output_folder
from tests.reliability.conftest import assess_argv, tree_digest


@pytest.mark.parametrize("where", ["inputs' folder", "parent of the inputs"])
def test_an_output_folder_holding_the_inputs_is_refused_and_nothing_is_lost(
    case_copy: Path, where: str, capsys: pytest.CaptureFixture
) -> None:
    out = case_copy if where == "inputs' folder" else case_copy.parent
    before = tree_digest(case_copy)
    assert main(assess_argv(case_copy, out)) == 2
    err = capsys.readouterr().err
    assert "never writes over its inputs" in err and err.count("\n") == 1
    assert tree_digest(case_copy) == before
    assert not (out / MARKER_NAME).exists()


def test_overwrite_does_not_permit_writing_over_inputs(case_copy: Path) -> None:
    before = tree_digest(case_copy)
    assert main(assess_argv(case_copy, case_copy, "--overwrite")) == 2
    assert tree_digest(case_copy) == before


def test_dicom_out_must_differ_from_out(case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [
        "specimen",
        "assess",
        "--ct",
        str(case_copy / "dicom" / "ct"),
        "--pet",
        str(case_copy / "dicom" / "pet"),
        "--out",
        str(tmp_path / "a"),
        "--dicom-out",
    ]
    for dicom_out in (tmp_path / "a", tmp_path / "a" / "dicom"):
        assert main([*argv, str(dicom_out)]) == 2
        assert "must be separate folders" in capsys.readouterr().err
    assert not (tmp_path / "a" / "result.json").exists()


def test_an_output_inside_an_input_folder_is_refused(case_copy: Path, capsys: pytest.CaptureFixture) -> None:
    ct = case_copy / "dicom" / "ct"
    before = tree_digest(ct)
    argv = ["specimen", "assess", "--ct", str(ct), "--pet", str(case_copy / "dicom" / "pet"), "--out", str(ct / "a")]
    assert main(argv) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert tree_digest(ct) == before


def test_a_folder_of_other_files_needs_overwrite_and_keeps_them(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("the surgeon's notes", encoding="utf-8")
    (out / "result.json").write_text("{}", encoding="utf-8")
    assert main(assess_argv(case_copy, out)) == 2
    assert "did not write (notes.txt, result.json)" in capsys.readouterr().err
    assert (out / "result.json").read_text(encoding="utf-8") == "{}"
    assert main(assess_argv(case_copy, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "the surgeon's notes"
    assert json.loads((out / "result.json").read_text(encoding="utf-8"))["margin_status"] == "negative"
    assert read_marker(out) is not None and "notes.txt" not in read_marker(out)["entries"]  # type: ignore[index]


def test_a_rerun_replaces_its_own_outputs_only(case_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "a"
    assert main(assess_argv(case_copy, out)) == 0
    (out / "my_reading.txt").write_text("mine", encoding="utf-8")
    first = tree_digest(out / "figures")
    assert main(assess_argv(case_copy, out, "--keep-all-components")) == 0  # no --overwrite needed: the folder is ours
    assert (out / "my_reading.txt").read_text(encoding="utf-8") == "mine"
    assert json.loads((out / "result.json").read_text())["config"]["keep_largest_component"] is False
    assert set(tree_digest(out / "figures")) == set(first)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_commit_removes_what_the_same_writer_wrote_before_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with atomic_path(out, producer="assess") as tmp:
        tmp.mkdir()
        (tmp / "old_seg.dcm").write_text("1")
        (tmp / "kept.txt").write_text("1")
    with atomic_path(out, producer="phantom") as tmp:
        tmp.mkdir()
        (tmp / "ct.nii.gz").write_text("another command's output")
    (out / "foreign.txt").write_text("theirs")
    with atomic_path(out, producer="assess") as tmp:
        tmp.mkdir()
        (tmp / "kept.txt").write_text("2")
        (tmp / "sub").mkdir()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([MARKER_NAME, "ct.nii.gz", "foreign.txt", "kept.txt", "sub"])
    assert (out / "kept.txt").read_text() == "2"
    marker = read_marker(out)
    assert marker is not None and marker["entries"] == ["ct.nii.gz", "kept.txt", "sub"]
    assert marker["producers"] == {"ct.nii.gz": "phantom", "kept.txt": "assess", "sub": "assess"}


def test_an_assessment_written_into_the_phantoms_folder_keeps_the_phantom(specimen_case: Path, tmp_path: Path) -> None:
    import shutil

    case = tmp_path / "phantom"
    shutil.copytree(specimen_case, case)
    argv = assess_argv(case, case / "assessment")
    assert main(argv) == 0
    phantom_files = tree_digest(case / "dicom")
    # the phantom's folder is breastseg's own, so the assessment may go there too, beside the phantom's images
    inputs_elsewhere = tmp_path / "inputs"
    inputs_elsewhere.mkdir()
    for name in ("ct.nii.gz", "pet.nii.gz", "truth.json"):
        shutil.copy2(case / name, inputs_elsewhere / name)
    assert main(assess_argv(inputs_elsewhere, case)) == 0
    assert all((case / n).is_file() for n in ("ct.nii.gz", "pet.nii.gz", "truth.json", "tumour.nii.gz", "result.json"))
    assert tree_digest(case / "dicom") == phantom_files


def test_a_crash_while_writing_keeps_the_earlier_outputs(
    case_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "a"
    assert main(assess_argv(case_copy, out)) == 0
    before = tree_digest(out)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk unplugged")

    monkeypatch.setattr("breastseg.workflows.specimen.report_html.specimen_report", crash)
    with pytest.raises(RuntimeError, match="disk unplugged"):
        main(assess_argv(case_copy, out))
    assert tree_digest(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_leftovers_of_a_killed_run_are_removed_and_a_running_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".tmp-{dead_pid}-0123abcd-a"
    stale.mkdir()
    (stale / "result.json").write_text("{}")
    live = tmp_path / f".tmp-{os.getpid()}-89abcdef-b"
    live.mkdir()
    unrelated = tmp_path / ".tmp-notes"
    unrelated.write_text("not ours")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert live.exists() and unrelated.exists()


def test_a_killed_assessment_leaves_nothing_a_later_run_keeps(case_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "a"
    script = (
        "import os, signal, breastseg.workflows.specimen.report_html as h\n"
        "h.specimen_report = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from breastseg.cli.main import main\n"
        f"main({assess_argv(case_copy, out)!r})\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert killed.returncode == -9
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # the kill left its temporary folder
    assert main(assess_argv(case_copy, out)) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_an_unwritable_location_is_refused_before_any_work(case_copy: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(assess_argv(case_copy, Path("/proc/breastseg-test/out"))) == 2
    err = capsys.readouterr().err
    assert "cannot write in /proc" in err
    assert "predicting" not in err


def test_a_full_disk_is_refused_before_any_work(
    case_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = outputs.shutil.disk_usage

    def nearly_full(path: object) -> object:
        usage = real(path)  # type: ignore[arg-type]
        return type(usage)(usage.total, usage.total - 10 * 2**20, 10 * 2**20)

    monkeypatch.setattr(outputs.shutil, "disk_usage", nearly_full)
    with pytest.raises(InputError, match=r"only 10 MiB free"):
        prepare_output_folder(tmp_path / "a", inputs=[case_copy / "ct.nii.gz"])
    assert not (tmp_path / "a").exists()


def test_an_output_file_may_not_replace_an_input(tmp_path: Path) -> None:
    model = tmp_path / "a.pt"
    model.write_bytes(b"weights")
    with pytest.raises(InputError, match="would overwrite the input"):
        prepare_output_file(model, inputs=[model, tmp_path / "b.pt"])
    with pytest.raises(InputError, match="is a folder"):
        prepare_output_file(tmp_path, inputs=[])


def test_combine_refuses_to_write_over_one_of_its_bundles(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = tmp_path / "fold0.pt"
    bundle.write_bytes(b"not read: the check comes first")
    assert main(["specimen", "combine", str(bundle), "--out", str(bundle)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert bundle.read_bytes() == b"not read: the check comes first"
