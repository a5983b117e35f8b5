"""``python -m breastseg``: the same as the ``breastseg`` command."""

from breastseg.cli.main import entry_point

entry_point()
