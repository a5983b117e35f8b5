"""Every command's outputs are checked before it computes anything: one wrapper for the whole command tree.

:func:`guard_outputs` gives each command with an ``--out`` folder an ``--overwrite`` flag and
runs :mod:`breastseg.io.outputs`'s checks with the command's own inputs — the values of its options and arguments
that name existing files or folders — before the command's body: an output that is or holds an input, a
``--dicom-out`` inside ``--out``, a folder of somebody else's files, a read-only or full disk are refused in the
first second, not after minutes of work. Whatever the command then writes into its folders, they carry breastseg's
marker afterwards (also after a failure part-way), so that its next run there is not refused. Commands whose
library function makes the same checks (:data:`CHECKS_ITS_OWN`) only get the flag.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from breastseg.io.atomic import read_marker, write_marker
from breastseg.io.outputs import prepare_output_file, prepare_output_folder

#: parameter names of a command's main output, and of a second output folder that must stay apart from it
OUTPUT_PARAMS = ("out_dir", "out_path")
SECOND_OUTPUT_PARAMS = ("dicom_out",)
#: commands (or groups) whose library function makes these checks itself — ``run_assessment`` for its Python users,
#: ``run_batch`` with a manifest's files as the inputs: they get ``--overwrite`` passed on and are not wrapped, so
#: that each check is made once
CHECKS_ITS_OWN = (("batch",), ("specimen", "assess"))

OVERWRITE_HELP = (
    "Write into an existing output folder that breastseg did not create (its files of the same names are replaced, "
    "every other file is kept). A folder that holds an input is refused regardless."
)


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _option_name(param: click.Parameter) -> str:
    opts = [o for o in param.opts if o.startswith("--")]
    return opts[0] if opts else f"--{param.name}"


def _is_folder(param: click.Parameter) -> bool:
    kind = param.type
    return not (isinstance(kind, click.Path) and not kind.dir_okay)


def _input_paths(command: click.Command, values: dict[str, Any]) -> list[Path]:
    found: list[Path] = []
    for param in command.params:
        if param.name in (*OUTPUT_PARAMS, *SECOND_OUTPUT_PARAMS) or not isinstance(param.type, click.Path):
            continue
        value = values.get(param.name or "")
        items = value if isinstance(value, (tuple, list)) else [value]
        found += [Path(v) for v in items if v is not None and Path(v).exists()]
    return found


def check_command_outputs(command: click.Command, values: dict[str, Any], overwrite: bool) -> list[Path]:
    """The checks of :mod:`breastseg.io.outputs` for one invocation (``values``: its parsed parameters); returns
    the main output folders it checked (``--out``; not ``--dicom-out``)."""
    params = {p.name: p for p in command.params}
    inputs = _input_paths(command, values)
    seconds = [(_option_name(params[n]), values.get(n)) for n in SECOND_OUTPUT_PARAMS if n in params]
    folders: list[Path] = []
    for name in OUTPUT_PARAMS:
        out = values.get(name)
        if name not in params or out is None:
            continue
        option = _option_name(params[name])
        if _is_folder(params[name]):
            folders.append(
                prepare_output_folder(out, inputs=inputs, overwrite=overwrite, separate_from=seconds, option=option)
            )
        else:
            prepare_output_file(out, inputs=inputs, option=option)
    for option, second in seconds:  # DICOM folders for the PACS: checked alike, but never marked (see atomic)
        if second is not None:
            prepare_output_folder(second, inputs=inputs, overwrite=overwrite, option=option)
    return folders


def guard_outputs(group: click.Group) -> None:
    """Wrap every command of ``group`` that writes an ``--out`` (see the module docstring)."""
    for path, command in _commands(group):
        names = {p.name for p in command.params}
        if not names & set(OUTPUT_PARAMS) or command.callback is None:
            continue
        if "overwrite" not in names and any(_is_folder(p) for p in command.params if p.name in OUTPUT_PARAMS):
            command.params.append(click.Option(["--overwrite"], is_flag=True, help=OVERWRITE_HELP))
        if any(path[: len(own)] == own for own in CHECKS_ITS_OWN):
            continue
        takes_flag = "overwrite" in inspect.signature(command.callback).parameters
        command.callback = _wrap(command, command.callback, takes_flag)


def _wrap(command: click.Command, callback: Callable[..., Any], takes_flag: bool) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        overwrite = bool(kwargs.get("overwrite", False) if takes_flag else kwargs.pop("overwrite", False))
        folders = check_command_outputs(command, kwargs, overwrite)
        try:
            return callback(*args, **kwargs)
        finally:  # a folder the command wrote into, even partly (a training that stopped), is breastseg's from now on
            for folder in folders:
                if folder.is_dir() and read_marker(folder) is None:
                    write_marker(folder, [])

    return run
