"""The fault suite's helpers: a tiny shot, an in-process ``tcvom`` call, and the checks
every fault must pass (exit code, a message that names file / frame / expectation, no
traceback, no temporary left, no finished frame lost)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FRAMES = (1001, 1002, 1003, 1004)
WIDTH, HEIGHT = 32, 24


@dataclass
class Shot:
    """Paths of the tiny example shot copied into a test's folder."""

    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "shot"

    @property
    def plate(self) -> str:
        return str(self.folder / "plate" / "plate.####.exr")

    def plate_frame(self, frame: int) -> Path:
        return self.folder / "plate" / f"plate.{frame}.exr"

    @property
    def keyframes(self) -> str:
        return str(self.folder / "keyframes" / "key.####.png")

    def keyframe(self, frame: int) -> Path:
        return self.folder / "keyframes" / f"key.{frame}.png"

    @property
    def trimaps(self) -> str:
        return str(self.folder / "truth" / "trimap.####.png")

    def trimap(self, frame: int) -> Path:
        return self.folder / "truth" / f"trimap.{frame}.png"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def run_args(self, *extra: str) -> list[str]:
        """A classical run of the shot; ``extra`` may give other ``--keyframes`` or ``--trimaps``
        (repeated, they add up, so the shot's own are then left out)."""
        given = [] if {"--keyframes", "--trimaps"} & set(extra) else ["--keyframes", self.keyframes]
        return ["run", "--plate", self.plate, *given, "--out", str(self.out), "--method", "classical",
                "--progress", "none", *extra]

    def matte_args(self, *extra: str, out: str | None = None) -> list[str]:
        given = [] if "--trimaps" in extra else ["--trimaps", self.trimaps]
        return ["matte", "--plate", self.plate, *given, "--out", out or str(self.out), "--method", "classical",
                "--progress", "none", *extra]


@dataclass
class Outcome:
    code: int
    err: str
    out: str


def tcvom(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """``tcvom ARGV`` in this process (argparse usage errors included)."""
    from tcvom.cli import main

    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refuses a flag
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Outcome(code, captured.err, captured.out)


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (to prove finished files were not lost)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tcvom-tmp-" in p.name]


def expect(outcome: Outcome, code: int, *mentions: str, root: Path | None = None,
           kept: dict[str, str] | None = None, kept_in: Path | None = None) -> None:
    """The checks of every fault: exit ``code``; each of ``mentions`` in stderr (file,
    frame, what was expected); no traceback; no temporary file under ``root``; every file
    of ``kept`` (a :func:`snapshot` of ``kept_in``) still there, unchanged."""
    assert outcome.code == code, f"exit {outcome.code}, expected {code}:\n{outcome.err}"
    assert "Traceback" not in outcome.err and "please report" not in outcome.err, outcome.err
    for text in mentions:
        assert text in outcome.err, f"{text!r} not in the message:\n{outcome.err}"
    if root is not None:
        assert not temporaries(root), temporaries(root)
    if kept is not None:
        assert kept_in is not None
        now = snapshot(kept_in)
        lost = {name for name, digest in kept.items() if now.get(name) != digest}
        assert not lost, f"finished files lost or changed: {sorted(lost)}"


def write(path: Path, pixels: np.ndarray, pixel_type: str = "uint8") -> Path:
    from tcvom.io import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, pixels, pixel_type=pixel_type)


def painted(values: dict[str, float], *, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A keyframe trimap: left third ``values['left']``, middle ``'middle'``, right ``'right'``."""
    out = np.zeros((height, width), np.float32)
    third = width // 3
    out[:, :third] = values.get("left", 0.0)
    out[:, third: 2 * third] = values.get("middle", 128 / 255)
    out[:, 2 * third:] = values.get("right", 1.0)
    return out
