"""Exception types for user-facing errors.

Every error a user can cause (a missing file, a DICOM tag that is absent, an image with the wrong number of
dimensions) raises one of these, with a message that names the file and says what to do. The command-line
layer turns them into one line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BreastsegError(Exception):
    """Base class of every error breastseg raises on purpose."""


class InputError(BreastsegError):
    """The input (a file, a DICOM tag, an array, an option) is missing, malformed or inconsistent."""


class ModelError(BreastsegError):
    """A trained model file is missing, corrupt or does not fit the input."""


#: the optional dependency groups of ``pyproject.toml`` and what each serves
EXTRAS = {
    "search": "the hyper-parameter search (specimen search, specimen study)",
    "batch": "cohort runs and training on a Dask cluster (--scheduler)",
    "service": "the DICOM listener, workers, job store on PostgreSQL and web viewer (serve, jobs)",
}


class MissingExtra(InputError):
    """An optional part of breastseg was used without its dependencies: the message says what to install."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"{EXTRAS[extra]} needs breastseg's optional '{extra}' dependencies ({module} is not installed): "
            f"pip install 'breastseg[{extra}]'"
        )
        self.extra = extra
        self.module = module
