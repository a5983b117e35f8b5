"""Workflow command groups whose commands are not built yet: each says which issue brings it.

They exist so that ``breastseg --help`` shows the whole shape of the tool; invoking one prints where the
work stands and exits with code 2 (nothing was done), never fake output.
"""

from __future__ import annotations

import click

_PLANNED = {
    "mri": ("Breast DCE-MRI tumour segmentation, volume and kinetics.", "issue #9 (MRI workflow)"),
}


def _planned_group(name: str, summary: str, issue: str) -> click.Group:
    @click.group(name=name, invoke_without_command=True, help=f"{summary}\n\nNot available yet: arrives with {issue}.")
    @click.pass_context
    def group(ctx: click.Context) -> None:
        if ctx.invoked_subcommand is None:
            click.echo(f"breastseg {name}: not available yet; it arrives with {issue}.", err=True)
            ctx.exit(2)

    return group


def planned_groups() -> list[click.Group]:
    """One placeholder group per workflow that has no commands yet."""
    return [_planned_group(name, summary, issue) for name, (summary, issue) in _PLANNED.items()]
