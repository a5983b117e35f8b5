"""Progress on stderr: lines with the time left in a log, nothing with -q, every update with -v; the CLI flags."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from breastseg import progress
from breastseg.cli.main import main
from breastseg.progress import Verbosity, bar, set_verbosity, status
from tests.conftest import SMALL_PHANTOM_ARGS


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    set_verbosity(Verbosity.NORMAL)


def test_lines_in_a_log_are_throttled_and_say_the_time_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    set_verbosity(Verbosity.NORMAL, live=False)
    with bar("fold 0", total=10) as shown:
        for epoch in range(1, 11):
            clock[0] += 10.0  # 10 s per epoch: a line at epochs 1, 4, 7 (30 s apart) and the last
            shown.update(completed=epoch, info=f"loss {1 / epoch:.2f}")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    # after epoch 1 (10 s for 1 of 10): 9 left at 10 s each = 90 s; stamped with the time since the start
    assert lines[0] == "breastseg [00:10] fold 0: 1/10 (10 %), about 01:30 left; loss 1.00"
    assert lines[1].startswith("breastseg [00:40] fold 0: 4/10 (40 %), about 01:00 left")
    assert lines[-1] == "breastseg [01:40] fold 0: 10/10 (100 %), done in 01:40; loss 0.10"


def test_quiet_prints_nothing_and_verbose_prints_every_update(capsys: pytest.CaptureFixture[str]) -> None:
    set_verbosity(Verbosity.QUIET)
    with status("reading") as step, bar("work", total=3) as shown:
        step("registering")
        for i in range(3):
            shown.update(completed=i + 1)
    assert capsys.readouterr().err == ""
    set_verbosity(Verbosity.VERBOSE)
    with status("reading") as step, bar("work", total=3) as shown:
        step("registering")
        step("registering")  # the same step again is not a new line
        for i in range(3):
            shown.update(completed=i + 1)
    err = capsys.readouterr().err
    assert re.findall(r"\] (\w+)", err) == ["reading", "registering", "work", "work", "work"]


def test_a_long_step_shows_in_a_log_and_a_quick_one_does_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "QUIET_START_S", 0.2)
    set_verbosity(Verbosity.NORMAL, live=False)
    with status("reading") as step:
        step("registering")  # quick: no line
        step("training")
        time.sleep(0.8)  # long: its line comes while it runs
    assert re.findall(r"\] (\w+)", capsys.readouterr().err) == ["training"]


def test_the_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["phantom", "specimen", "--seed", "0", *SMALL_PHANTOM_ARGS]
    assert main(["-v", *args, "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr()
    # -v, and not a terminal here: each step as a timestamped line on stderr, the result on stdout
    assert re.search(r"breastseg \[\d\d:\d\d\] generating the specimen phantom", said.err)
    assert "margin" in said.out
    assert main(["-q", *args, "--out", str(tmp_path / "b")]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out == said.out.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert main(["-q", "-v", *args, "--out", str(tmp_path / "c")]) == 2
    assert "not both" in capsys.readouterr().err
