"""The README's tour runs as written: every code block, in order, in a fresh folder beside the environment.

Each block carries an HTML comment saying how it is tested: ``<!-- tour: fast -->`` (the default suite),
``<!-- tour: slow -->`` (``make test-slow``; ``needs busi`` when it reads the public BUSI data) or
``<!-- tour: skip, <why> -->``. A block without one fails the test, so a new block cannot go untested. The slow
test runs every block and writes each one's wall time to ``build/readme-tour-times.json`` — the README's time
figures come from it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, shared_data_dir

README = REPO_ROOT / "README.md"
_BLOCK = re.compile(r"(?:<!-- tour: (?P<tag>[^>]*?) -->\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    index: int
    lang: str
    code: str
    tag: str

    @property
    def kind(self) -> str:
        return self.tag.split(",")[0].strip()

    @property
    def needs_busi(self) -> bool:
        return "needs busi" in self.tag

    @property
    def name(self) -> str:
        first = next(line for line in self.code.splitlines() if line.strip() and not line.startswith("#"))
        return f"block {self.index} ({self.lang}): {first[:70]}"


def tour_blocks() -> list[Block]:
    return [
        Block(i, m["lang"], m["code"], (m["tag"] or "").strip())
        for i, m in enumerate(_BLOCK.finditer(README.read_text(encoding="utf-8")))
    ]


def test_every_block_says_how_it_is_tested() -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 10
    untagged = [b.name for b in blocks if b.kind not in ("fast", "slow", "skip")]
    assert not untagged, f"README blocks without a <!-- tour: fast|slow|skip --> comment: {untagged}"
    for b in blocks:
        if b.kind == "skip":
            assert len(b.tag.split(",", 1)) == 2 and b.tag.split(",", 1)[1].strip(), f"{b.name}: say why it is skipped"
        if b.kind != "skip" and b.lang == "bash":
            assert "tour/" in b.code, f"{b.name}: a tour step writes under tour/"


def _workspace(tmp: Path) -> dict[str, str]:
    """A fresh folder where ``.venv/bin/breastseg`` is this environment's command, as in a clone's root."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "breastseg").exists():
        pytest.skip(f"{venv} has no breastseg command (run the suite from the project's .venv)")
    (tmp / ".venv").symlink_to(venv, target_is_directory=True)
    env = dict(os.environ)
    env["BREASTSEG_DATA"] = str(shared_data_dir())
    env.setdefault("PYTHONPATH", str(REPO_ROOT / "src"))
    return env


def _run(block: Block, cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    if block.lang == "python":
        script = cwd / f"tour_block_{block.index}.py"
        script.write_text(block.code, encoding="utf-8")
        command = [str(cwd / ".venv" / "bin" / "python"), str(script)]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return time.perf_counter() - t0


def test_the_fast_blocks_run_as_written(tmp_path: Path) -> None:
    env = _workspace(tmp_path)
    for block in tour_blocks():
        if block.kind == "fast":
            _run(block, tmp_path, env)
    # what the tour promises is there
    assert json.loads((tmp_path / "tour" / "case0-assessment" / "result.json").read_text())["margin_status"]
    assert json.loads((tmp_path / "tour" / "case0-scores.json").read_text())["dice"] > 0.5


@pytest.mark.slow
def test_the_whole_tour_runs_as_written_and_is_timed(tmp_path: Path) -> None:
    busi = shared_data_dir() / "busi"
    env = _workspace(tmp_path)
    times = {}
    for block in tour_blocks():
        if block.kind == "skip" or (block.needs_busi and not busi.is_dir()):
            continue
        times[block.name] = round(_run(block, tmp_path, env), 1)
    out = REPO_ROOT / "build" / "readme-tour-times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(times, indent=2), encoding="utf-8")
    print(json.dumps(times, indent=2))
    assert (tmp_path / "tour" / "study" / "report.md").is_file()
    assert (tmp_path / "tour" / "petct-cohort" / "cohort.json").is_file()
    assert (tmp_path / "tour" / "margins" / "summary.json").is_file()
    assert (tmp_path / "tour" / "petct-evaluation" / "evaluation.json").is_file()
    assert (tmp_path / "tour" / "mri-e3" / "result.json").is_file()
