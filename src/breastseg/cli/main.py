"""``breastseg``: the command-line entry point.

Every sub-command is a thin layer over the Python API. User errors (:class:`~breastseg.errors.BreastsegError`)
become one line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from breastseg._version import __version__
from breastseg.cli.batch import batch
from breastseg.cli.evaluate import evaluate
from breastseg.cli.info import info
from breastseg.cli.mri import mri
from breastseg.cli.outputs import guard_outputs
from breastseg.cli.petct import petct
from breastseg.cli.phantom import phantom
from breastseg.cli.serve import jobs, serve
from breastseg.cli.specimen import specimen
from breastseg.cli.ultrasound import ultrasound
from breastseg.errors import BreastsegError
from breastseg.progress import Verbosity, set_verbosity

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="breastseg")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (results, warnings and errors still print).")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Every step and update as a timestamped line on stderr, also on a terminal (without -v: a live display "
    "on a terminal, a line every 30 s in a log or pipe).",
)
def cli(quiet: bool, verbose: bool) -> None:
    """Breast tumour segmentation and the read-outs physicians act on.

    \b
    Workflows:
      specimen    margin status of a lumpectomy specimen on micro-PET-CT (flagship)
      petct       metastatic lesions, SUV biomarkers and response on whole-body PET/CT
      mri         tumour mask, volume and kinetics on breast DCE-MRI
      ultrasound  tumour mask and area on 2D breast ultrasound
    Cohorts and service:
      batch       any workflow over a cohort table, locally or on a Dask cluster; reruns skip finished cases
      serve       a DICOM node that assesses specimens as the scanner sends them (serve dicom), its workers,
                  and a web viewer of the results (serve web)
      jobs        the service's jobs: list, show, retry
    Tools:
      phantom     synthetic cases with known truth, for demos and tests
      evaluate    score a segmentation against a reference (Dice, HD95, surface Dice …)
      info        this machine's CPU, SIMD features and numeric stack (quote it with timings)

    \b
    Start here:
      breastseg phantom specimen --out demo/ --seed 0     # a specimen with a 2 mm margin
      breastseg phantom specimen --help                   # every option, explained
    """
    if quiet and verbose:
        raise click.UsageError("give -q/--quiet or -v/--verbose, not both")
    set_verbosity(Verbosity.QUIET if quiet else Verbosity.VERBOSE if verbose else Verbosity.NORMAL)


cli.add_command(phantom)
cli.add_command(evaluate)
cli.add_command(specimen)
cli.add_command(ultrasound)
cli.add_command(petct)
cli.add_command(mri)
cli.add_command(serve)
cli.add_command(jobs)
cli.add_command(batch)
cli.add_command(info)
guard_outputs(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 user error)."""
    try:
        rv = cli.main(args=argv, prog_name="breastseg", standalone_mode=False)
    except BreastsegError as exc:
        click.echo(f"breastseg: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("breastseg: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return rv if isinstance(rv, int) else 0


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
