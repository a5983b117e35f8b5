"""From the scanner's last file to SEG + SR in the PACS: the latency of ``breastseg serve dicom``.

A real Orthanc (Debian ``orthanc``) is the PACS, DCMTK's ``storescu`` the scanner, the service runs as the real
command in its own process. For each phantom study — a specimen (CT + PET DICOM, the demo's geometry), or with
``--workflow ultrasound`` a breast ultrasound study of ``--images`` speckle images (480 × 640 px, a dark lesion in
every other one) predicted by the packaged model:

* ``send``: storescu of the study to breastseg; peer: the same study to Orthanc, measured in the same run;
* ``quiet``: last file received → job queued (the configured quiet period, 1 s here, plus the watcher's poll);
* ``assess``: the job's assessment incl. DICOM writing; peer: the one-shot command on the same files
  (``specimen assess --dicom-out``, ``ultrasound predict``) as a fresh process (imports and model loading
  included, which the service does once per worker);
* ``to PACS``: C-STORE of the results (SEG + SR + report; per ultrasound image its SEG and overlay) to Orthanc;
* ``total``: last file received → the results stored in Orthanc (Orthanc acknowledged the last C-STORE).

Run: ``.venv/bin/python benchmarks/dicom_service.py [--studies 3] [--method threshold|resunet]
[--workflow specimen|ultrasound] [--images 4]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import pydicom.uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import dcmtk_tool, free_port, orthanc_server  # noqa: E402

from breastseg.machine import print_header  # noqa: E402
from breastseg.phantoms.specimen import (  # noqa: E402
    SpecimenPhantomConfig,
    make_specimen_phantom,
    write_specimen_dicom,
)

BREASTSEG = [sys.executable, "-m", "breastseg"]


def storescu(folder: Path, aet: str, aec: str, port: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [dcmtk_tool("storescu"), "-aet", aet, "-aec", aec, "127.0.0.1", str(port), "+sd", "+r", str(folder)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def wait_listening(port: int, timeout_s: float = 120) -> None:
    """Until the service answers a C-ECHO."""
    deadline = time.monotonic() + timeout_s
    echo = [dcmtk_tool("echoscu"), "-aet", "SCANNER", "-aec", "BREASTSEG", "127.0.0.1", str(port)]
    while subprocess.run(echo, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the service did not answer on port {port}")
        time.sleep(0.5)


def write_ultrasound_study(folder: Path, seed: int, images: int) -> None:
    """``images`` speckle images of one study and series (a dark lesion in every other one), 0.1 mm pixels."""
    from tests.workflows.ultrasound.conftest import speckle_scene

    from breastseg.io.dicom_write import StudyIdentity, write_ultrasound_image

    study = StudyIdentity(patient_id=f"US-{seed}")
    series = pydicom.uid.generate_uid()
    for i in range(images):
        lesion = (240, 300 + 20 * i, 70) if i % 2 == 0 else None
        pixels, _ = speckle_scene(100 * seed + i, (480, 640), lesion)
        write_ultrasound_image(pixels, folder / f"im{i}.dcm", (0.1, 0.1), study=study, series_uid=series,
                               instance_number=i + 1)  # fmt: skip


def outcome(summary: dict) -> str:
    """The job's read-out in a few words."""
    if summary.get("workflow") == "ultrasound":
        return f"lesion in {summary['lesions_found']} of {summary['images']} images"
    return f"{summary['margin_status']} {summary['min_margin_mm']:.2f} mm"


def wait_job(db: Path, study: str, timeout_s: float = 600) -> dict[str, float | str | None]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db, timeout=10) as conn:
                row = conn.execute(
                    "SELECT state, created, started, finished, last_received, summary, error FROM jobs "
                    "WHERE study_uid = ?",
                    (study,),
                ).fetchone()
            if row and row[0] in ("done", "failed"):
                keys = ("state", "created", "started", "finished", "last_received", "summary", "error")
                return dict(zip(keys, row, strict=True))
        time.sleep(0.05)
    raise TimeoutError(f"no result for study {study}")


def main() -> None:
    print_header(__doc__ or "dicom_service")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--method", choices=["threshold", "resunet"], default="threshold")
    parser.add_argument("--workflow", choices=["specimen", "ultrasound"], default="specimen")
    parser.add_argument("--images", type=int, default=4, help="images per ultrasound study")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breastseg-bench-") as tmp:
        root = Path(tmp)
        with orthanc_server(root / "orthanc") as pacs:
            port = free_port()
            store = root / "store"
            store.mkdir()
            log = (root / "service.log").open("wb")
            service = subprocess.Popen(
                [*BREASTSEG, "serve", "dicom", "--port", str(port), "--allow-ae", "SCANNER", "--dest", pacs.node,
                 "--store", str(store), "--quiet", "1", "--method", args.method, "--ultrasound-model", "packaged"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                rows = []
                for k in range(args.studies):
                    if args.workflow == "specimen":
                        ph = make_specimen_phantom(SpecimenPhantomConfig(seed=k, margin_mm=(0.5, 1.5, 3.0)[k % 3]))
                        folders = write_specimen_dicom(ph, root / f"scan{k}")
                        command = [*BREASTSEG, "specimen", "assess", "--ct", str(folders["ct"]), "--pet"]
                        command += [str(folders["pet"]), "--method", args.method, "--out", str(root / f"cli{k}")]
                        command += ["--dicom-out", str(root / f"clid{k}")]
                    else:
                        write_ultrasound_study(root / f"scan{k}", k, args.images)
                        command = [*BREASTSEG, "ultrasound", "predict", "--image", str(root / f"scan{k}"), "--out"]
                        command.append(str(root / f"cli{k}"))
                    files = len(list((root / f"scan{k}").rglob("*.dcm")))
                    study = str(pydicom.dcmread(next((root / f"scan{k}").rglob("*.dcm"))).StudyInstanceUID)
                    if k == 0:
                        wait_listening(port)  # the service's start-up (imports) is not part of a study's latency
                    send = storescu(root / f"scan{k}", "SCANNER", "BREASTSEG", port)
                    job = wait_job(store / "jobs.sqlite", study)
                    if job["state"] != "done":
                        raise SystemExit(f"study {k}: job {job['state']}: {job['error']}")
                    summary = json.loads(str(job["summary"]))
                    # peers: Orthanc's own ingest of the same files; the one-shot command on the same files
                    peer_send = storescu(root / f"scan{k}", "SCANNER", pacs.ae_title, pacs.dicom_port)
                    t0 = time.perf_counter()
                    subprocess.run(command, check=True, capture_output=True)
                    cli = time.perf_counter() - t0
                    last = float(job["last_received"])  # type: ignore[arg-type]
                    rows.append(
                        {
                            "study": k,
                            "files": files,
                            "send_s": send,
                            "orthanc_send_s": peer_send,
                            "quiet_s": float(job["created"]) - last,  # type: ignore[arg-type]
                            "assess_s": summary["assessment_s"],
                            "cli_s": cli,
                            "to_pacs_s": summary["send_s"],
                            "total_s": summary["last_file_to_sent_s"],
                            "outcome": outcome(summary),
                        }
                    )
            finally:
                service.send_signal(signal.SIGTERM)
                service.wait(120)
                log.close()
    head = f"{'study':>5} {'files':>5} {'send':>6} {'Orthanc':>7} {'ratio':>5} {'quiet':>6} {'assess':>6} {'CLI':>6}"
    head += f" {'ratio':>5} {'toPACS':>6} {'total':>6}  outcome"
    method = args.method if args.workflow == "specimen" else "the packaged ultrasound model"
    print(f"breastseg serve dicom, {args.workflow} studies, {method}; times in s; ratio = breastseg / peer")
    print(head)
    for r in rows:
        print(
            f"{r['study']:>5} {r['files']:>5} {r['send_s']:6.2f} {r['orthanc_send_s']:7.2f} "
            f"{r['send_s'] / r['orthanc_send_s']:5.2f} {r['quiet_s']:6.2f} {r['assess_s']:6.2f} {r['cli_s']:6.2f} "
            f"{r['assess_s'] / r['cli_s']:5.2f} {r['to_pacs_s']:6.2f} {r['total_s']:6.2f}  {r['outcome']}"
        )
    mean = sum(r["total_s"] for r in rows) / len(rows)
    print(f"mean last file → results stored in Orthanc: {mean:.2f} s")


if __name__ == "__main__":
    main()
