"""Cohort throughput of ``breastseg batch specimen``: cases per minute in this process (1 worker), on a local pool of
2 processes, and on a Dask cluster on this machine (a scheduler and 2 single-threaded workers, started here).

The same phantom cohort (12 specimens at the specimen-cohort defaults: CT 0.3 mm, PET 0.6 mm) for every engine, the
threshold method, outputs written as the single-case command writes them. The one-process run is the peer the
others are compared with (speed-up column). Run: ``.venv/bin/python benchmarks/batch.py [--cases 12]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import dask_cluster  # noqa: E402

from breastseg.batch.engine import run_batch  # noqa: E402
from breastseg.batch.manifest import read_manifest  # noqa: E402
from breastseg.batch.runners import SpecimenRunner  # noqa: E402
from breastseg.machine import print_header  # noqa: E402
from breastseg.phantoms.specimen_cohort import CohortConfig, specimen_margins, write_cohort  # noqa: E402


def main() -> None:
    print_header(__doc__ or "batch")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breastseg-batch-") as tmp:
        root = Path(tmp)
        cfg = CohortConfig(
            nst_patients=1,
            ilc_patients=0,
            dcis_patients=0,
            lamellae_per_patient=1,
            specimen_margins_mm=specimen_margins(args.cases),
            shared_specimens=0,
        )
        manifest = write_cohort(root / "cohort", cfg)["specimens"]
        runner = SpecimenRunner()
        cases = read_manifest(manifest, runner.path_columns, runner.required)
        rows = []
        for label, workers in (("1 process (peer)", 1), ("local pool, 2 processes", 2)):
            out = root / f"out-{workers}"
            result = run_batch(runner, cases, out, workers=workers)
            rows.append((label, result.seconds, result.failed))
            shutil.rmtree(out)
        with dask_cluster(root / "dask", workers=2) as (address, _procs):
            result = run_batch(runner, cases, root / "out-dask", scheduler=address)
            rows.append(("Dask: scheduler + 2 workers", result.seconds, result.failed))
    peer = rows[0][1]
    print(f"breastseg batch specimen, {len(cases)} phantom specimens, threshold method, {os.cpu_count()} CPU cores")
    print(f"{'engine':<30} {'seconds':>8} {'cases/min':>10} {'speed-up':>9} {'failed':>7}")
    for label, seconds, failed in rows:
        print(f"{label:<30} {seconds:8.1f} {60 * len(cases) / seconds:10.1f} {peer / seconds:9.2f} {failed:7d}")


if __name__ == "__main__":
    main()
