"""Doubt per frame and the next keyframe to paint: the review of a run.

Every run writes ``OUT/review/review.json``, ``review.csv`` and ``review.png`` (doubt per
frame with the keyframes marked). The scores are explained in ``docs/review.md``:

- **trimap doubt** of a frame decided by two passes (between two keyframes) is how much the
  forward and the backward pass disagree (:func:`tcvom.propagation.ensemble.disagreement`,
  in pixels) over the size of the frame's edge (its unknown band, see :func:`edge_scale`).
  A frame reached by one pass (before the first or after the last keyframe) has no second
  opinion: its doubt is the drift the two-pass frames of the shot show per frame of
  distance from a keyframe (:data:`DEFAULT_DRIFT` when there are none) times its distance.
  Keyframes have no doubt.
- **matte doubt** is the alpha change the motion does not explain: alpha of the previous and
  of the next frame warped onto the frame with optical flow
  (:class:`tcvom.classical.flow.FlowEstimator`), their absolute difference summed over the
  pixels whose flow passes the forward-backward check, averaged over the two neighbours
  (a neighbour across a cut is left out), over the edge size.
- Both ratios are squashed to [0, 1) by ``x / (x + 1)`` (1 edge-size of disagreement is 0.5)
  and the frame's **doubt** is the larger. Frames above :data:`THRESHOLD` are *doubtful*.
- **suggested** frames are chosen greedily: a new keyframe at ``f`` is expected to scale the
  doubt of each frame ``t`` by ``d_new(t) / d_old(t)`` (propagation error grows with the
  distance to the nearest keyframe of the frame's picture: none across a cut), so ``f`` with the largest expected reduction of the
  summed doubt comes first; then it is taken as keyed and the next is chosen.

The JSON schema (version 1) is fixed; other code reads it (the Blender and Nuke adapters
through :func:`tcvom.hosts.client.read_review`): ``{"version": 1, "keyframes": [int],
"frames": [{"frame", "trimap_doubt", "matte_doubt", "doubt", ...}], "suggested": [int],
"doubtful": [int], ...}``; keys may be added, never removed.

The per-frame figures a rerun must not lose are kept with the outputs they describe:
the trimap stage adds them (:func:`trimap_record`) to each trimap's frame record
(:mod:`tcvom.farm.records`, which also says whether the file is still the one written),
and matte residuals are cached in ``review/matte.cache.json`` by the sizes and times of
the alpha files they were computed from. A rerun that reuses frames rebuilds the review
from these.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tcvom.classical.flow import FOLLOWED, cuts_over, followed
from tcvom.classical.flow import unlike_both as flow_unlike_both
from tcvom.errors import (
    InputError,
    MissingFrameError,
    TcvomError,
    check_text,
    command_word,
    compiled_imported_held,
)
from tcvom.io.atomic import write_csv, write_text
from tcvom.io.sequence import format_range, frame_selection, parse_frame_range, path_text
from tcvom.io.trimap import class_counts
from tcvom.progress import Progress, ProgressMode, check_progress
from tcvom.propagation.ensemble import past_cuts

if TYPE_CHECKING:
    from tcvom.farm.records import FrameRecords

log = logging.getLogger("tcvom")

VERSION = 1
THRESHOLD = 0.5
DEFAULT_DRIFT = 0.02  # edge-sizes of disagreement per frame of distance, when the shot shows none
CUT_RATIO = 3.0  # trimap doubt (edge-sizes) of a frame every pass reached across a cut: as a frame unlike both
SUGGESTIONS = 5
REVIEW_FOLDER = "review"


# ----- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrimapStats:
    """What the trimap stage records about one frame (see :func:`trimap_record`)."""

    frame: int
    keyframe: bool
    unknown: int  # pixels of the unknown band
    foreground: int  # pixels of foreground
    disagreement: float | None  # pixels; None where one pass (or the keyframe) decides the frame


@dataclass
class FrameDoubt:
    """One frame of a review. ``trimap_doubt``, ``matte_doubt`` and ``doubt`` are in [0, 1)."""

    frame: int
    trimap_doubt: float
    matte_doubt: float
    doubt: float
    keyframe: bool = False
    edge: float = 0.0  # the edge size (pixels) the ratios are taken over
    disagreement: float | None = None
    residual: float | None = None  # pixels of unexplained alpha change


@dataclass
class Review:
    """A review: schema version 1 (see the module's docstring)."""

    keyframes: list[int]
    frames: list[FrameDoubt]
    suggested: list[int]
    doubtful: list[int]
    threshold: float = THRESHOLD
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def doubt(self) -> dict[int, float]:
        return {f.frame: f.doubt for f in self.frames}

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "keyframes": list(self.keyframes),
            "frames": [asdict(f) for f in self.frames],
            "suggested": list(self.suggested),
            "doubtful": list(self.doubtful),
            "threshold": self.threshold,
            **self.extra,
        }


# ----- the scores --------------------------------------------------------------------------------
def squash(ratio: float) -> float:
    """``x / (x + 1)``: 0 stays 0, one edge-size of error is 0.5, never reaches 1."""
    ratio = max(0.0, float(ratio))
    return ratio / (ratio + 1.0)


def edge_scale(unknown: int, keyframe_unknown: float) -> float:
    """The edge size a frame's errors are measured against (pixels): its unknown band, but at
    least half the keyframes' median band (a band that collapsed does not make every error
    huge) and at least 16 pixels."""
    return float(max(unknown, 0.5 * keyframe_unknown, 16.0))


def _pictures(frames: Sequence[int], cuts: Iterable[int] = ()) -> np.ndarray:
    """Which picture (0, 1, ...) every frame shows: a cut after a frame starts the next."""
    cut_after = {frames.index(c) for c in cuts if c in frames}
    return np.cumsum([0] + [1 if i in cut_after else 0 for i in range(len(frames) - 1)])


def _distances(frames: Sequence[int], keyframes: Iterable[int], cuts: Iterable[int] = ()) -> np.ndarray:
    """Distance (in frames of the shot) from every frame to the nearest keyframe of its
    picture (``cuts``: see :func:`_pictures`); the shot's length where its picture has none."""
    keys = np.array(sorted(frames.index(k) for k in keyframes if k in frames), dtype=np.int64)
    pos = np.arange(len(frames))
    if not len(keys):
        return np.full(len(frames), float(len(frames)))
    picture = _pictures(frames, cuts)
    apart = np.abs(pos[:, None] - keys[None, :]).astype(np.float64)
    apart[picture[:, None] != picture[keys][None, :]] = float(len(frames))
    return np.minimum(apart.min(axis=1), float(len(frames)))


def _bounds(frames: Sequence[int], keyframes: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """Distance (in frames of the shot) from every frame to the keyframe before and after it
    (``inf`` where there is none)."""
    keys = sorted(frames.index(k) for k in keyframes if k in frames)
    before = np.full(len(frames), np.inf)
    after = np.full(len(frames), np.inf)
    for i in range(len(frames)):
        earlier = [k for k in keys if k <= i]
        later = [k for k in keys if k >= i]
        if earlier:
            before[i] = i - earlier[-1]
        if later:
            after[i] = later[0] - i
    return before, after


def shot_drift(frames: Sequence[int], stats: Mapping[int, TrimapStats], keyframes: Sequence[int]) -> float | None:
    """The shot's drift (edge-sizes of disagreement per frame of distance, see
    :func:`trimap_ratios`): the median over its two-pass frames; None where it has none."""
    frames = list(frames)
    key_bands = [stats[k].unknown for k in keyframes if k in stats]
    key_band = float(np.median(key_bands)) if key_bands else 0.0
    before, after = _bounds(frames, keyframes)
    rates = []
    for i, f in enumerate(frames):
        s = stats.get(f)
        if s is not None and s.disagreement is not None and np.isfinite(before[i] + after[i]) and before[i] > 0:
            rates.append(s.disagreement / edge_scale(s.unknown, key_band) / (before[i] + after[i]))
    return float(np.median(rates)) if rates else None


def trimap_ratios(frames: Sequence[int], stats: Mapping[int, TrimapStats], keyframes: Sequence[int],
                  measured: float | None, cuts: Iterable[int] = (), crossed: set[int] | None = None) -> dict[int, float]:
    """Unsquashed trimap doubt (edge-sizes) of every frame (see the module docstring); a frame
    without a record is estimated as a one-pass frame is. Empty without any record.

    ``cuts``: frames after which the picture cuts to another. A pass that crossed one
    propagated another picture: where one of two passes did, the ensemble
    (:func:`tcvom.propagation.ensemble.propagate_segment`) took the other alone, and the
    frame drifts as a one-pass frame at its distance from that pass's keyframe (trimaps of
    an older tcvom, which leant on the nearer pass, keep their disagreement: at least the
    whole of it where the nearer pass crossed); where every pass did, :data:`CUT_RATIO` (those
    frames are added to ``crossed``, where given). ``measured``: the shot's drift
    (:func:`shot_drift`; None: :data:`DEFAULT_DRIFT` is used).

    Between two keyframes the passes' disagreement ``D`` is about the sum of their errors,
    each growing with its distance; the ensemble leans on the nearer pass, so the frame's
    expected error is ``D * d_near / (d_before + d_after)``, and ``D / (d_before + d_after)``
    is the shot's drift per frame. Outside the keyframes: drift times distance. (The growth
    of the unknown band against the keyframe's was tried as a sign of lost track; on the
    synthetic benchmark it overstated the doubt far from the keyframe and picked worse
    keyframes, see docs/review.md.)
    """
    frames = list(frames)
    key_bands = [stats[k].unknown for k in keyframes if k in stats]
    key_band = float(np.median(key_bands)) if key_bands else 0.0
    before, after = _bounds(frames, keyframes)
    drift = DEFAULT_DRIFT if measured is None else measured
    keyset = set(keyframes)
    cut_after = {frames.index(c) for c in cuts if c in frames}  # positions i: a cut between i and i + 1
    out: dict[int, float] = {}
    if not stats:
        return out
    for i, f in enumerate(frames):
        s = stats.get(f)
        near = min(before[i], after[i])
        if f in keyset or (s is not None and s.keyframe) or near == 0:
            out[f] = 0.0
            continue
        if s is None:  # no (current) record: a trimap from an interrupted run or an older tcvom
            out[f] = drift * near if np.isfinite(near) else 0.0
            continue
        edge = edge_scale(s.unknown, key_band)
        if s.disagreement is not None and np.isfinite(before[i] + after[i]):
            out[f] = s.disagreement / edge * near / (before[i] + after[i])
        else:  # one pass; no keyframe among the frames (a run of part of a shot): unknown
            out[f] = drift * near if np.isfinite(near) else 0.0
        b, a = before[i], after[i]  # the passes from the keyframe before (cuts at i - b .. i - 1) and after
        forward = bool(np.isfinite(b)) and not cut_after.isdisjoint(range(i - int(b), i))
        backward = bool(np.isfinite(a)) and not cut_after.isdisjoint(range(i, i + int(a)))
        reached = [crossed for d, crossed in ((b, forward), (a, backward)) if np.isfinite(d)]
        if reached and all(reached):
            out[f] = max(out[f], CUT_RATIO)
            if crossed is not None:
                crossed.add(f)
        elif len(reached) == 2 and s.disagreement is None and forward != backward:
            out[f] = drift * (a if forward else b)  # the ensemble took the pass from the cut's own side alone
        elif (forward if b <= a else backward) and s.disagreement is not None:
            out[f] = max(out[f], s.disagreement / edge)  # trimaps of a tcvom that leant on it
    return out


def say_past_cuts(groups: Sequence[Sequence[int]], cuts: Iterable[int] = ()) -> None:
    """Warn of :func:`past_cuts` ``groups``: one keyframe is needed in each (``cuts``, where
    known, are named)."""
    if not groups:
        return
    ranges = [format_range(list(g)) for g in groups]
    one = sum(len(g) for g in groups) == 1
    after = sorted(cuts)
    where = f" (the picture cuts after {', '.join(str(c) for c in after)})" if after else ""
    log.warning("%s %s %s past a cut%s from every keyframe: %s carried over from another picture. Paint a keyframe "
                "in %s", "frame" if one else "frames", " and ".join(ranges), "lies" if one else "lie", where,
                "its trimap is" if one else "their trimaps are",
                ranges[0] if len(ranges) == 1 else "each of " + ", ".join(ranges))


def alpha_residual(
    image: np.ndarray, alpha: np.ndarray, other_image: np.ndarray, other_alpha: np.ndarray, flow: Any = None
) -> float:
    """Alpha change between a frame and a neighbour that the motion does not explain (pixels).

    ``image``/``other_image`` float32 ``H x W x 3`` in [0, 1], ``alpha``/``other_alpha``
    float32 ``H x W`` in [0, 1]. The neighbour's alpha is warped onto the frame with DIS flow
    (``flow``: a :class:`~tcvom.classical.flow.FlowEstimator`); pixels whose flow fails the
    forward-backward check are left out (they are new or hidden, not wrong), unless the flow
    follows less than :data:`FOLLOWED` of the frame: then the whole change counts.
    """
    return alpha_change(image, alpha, other_image, other_alpha, flow)[0]


def alpha_change(image: np.ndarray, alpha: np.ndarray, other_image: np.ndarray, other_alpha: np.ndarray,
                 flow: Any = None) -> tuple[float, float]:
    """:func:`alpha_residual`, and the share of the frame the flow follows to the neighbour
    (its pixels that pass the forward-backward check)."""
    from tcvom.classical.flow import warp

    forward, valid, share = followed(image, other_image, flow)
    if share < FOLLOWED:  # a cut, a flash, a frame of another shot: nothing explains the change
        return float(np.abs(alpha.astype(np.float32) - other_alpha.astype(np.float32)).sum(dtype=np.float64)), share
    moved = warp(np.ascontiguousarray(other_alpha, dtype=np.float32), forward)
    return float(np.abs(alpha.astype(np.float32) - moved)[valid].sum(dtype=np.float64)), share


def unlike_both(shares: Sequence[float], before: np.ndarray, after: np.ndarray, flow: Any = None) -> bool:
    """Whether a frame the flow follows by ``shares`` (the previous frame into it, it into the
    next, as the trimap stage judges them) shows a picture unlike both neighbours (images
    ``before`` and ``after``; :func:`tcvom.classical.flow.unlike_both`: the neighbours follow
    each other, the frame neither)."""
    return unlike_between(shares, before, after, flow) is not None


def unlike_between(shares: Sequence[float], before: np.ndarray, after: np.ndarray, flow: Any = None) -> float | None:
    """The share the neighbours of a frame unlike both (:func:`unlike_both`) follow each other,
    or None: a frame not unlike both."""
    if len(shares) != 2 or max(shares) >= FOLLOWED:
        return None
    between = followed(before, after, flow)[2]
    return between if flow_unlike_both(shares, between) else None


UNLIKE_DOUBT = squash(3.0)
"""The least matte doubt (0.75, three edge-sizes) of a frame unlike both neighbours
(:func:`unlike_both`): a picture unlike the frames around it (a flash, a frame of another
shot) carries the trimap of the frames around it onto a picture it does not fit, and its own
band, widened where propagation lost track, hides its residual."""


def suggest(
    frames: Sequence[int], doubt: Mapping[int, float], keyframes: Sequence[int], count: int = SUGGESTIONS,
    candidates: Iterable[int] | None = None, cuts: Iterable[int] = (),
) -> list[int]:
    """Frames to key next, best first (greedy expected reduction of the summed doubt), among
    ``candidates`` (default: every frame). A keyframe helps the frames of its own picture
    only (``cuts``: frames after which the picture cuts to another)."""
    frames = list(frames)
    allowed = set(frames if candidates is None else candidates)
    values = np.array([doubt.get(f, 0.0) for f in frames], dtype=np.float64)
    keys = [k for k in keyframes if k in frames]
    cuts = list(cuts)
    picture = _pictures(frames, cuts)
    pos = np.arange(len(frames))

    def keyed_at(i: int, old: np.ndarray) -> np.ndarray:  # the distances once frame i is keyed
        return np.where(picture == picture[i], np.minimum(old, np.abs(pos - i)), old)

    chosen: list[int] = []
    for _ in range(min(count, len(frames))):
        old = _distances(frames, keys + chosen, cuts)
        best, gain = None, 0.0
        for i, f in enumerate(frames):
            if old[i] == 0 or f not in allowed:
                continue
            ratio = np.divide(keyed_at(i, old), old, out=np.ones_like(old), where=old > 0)
            g = float((values * (1.0 - ratio)).sum())
            if g > gain + 1e-12:
                best, gain = f, g
        if best is None:
            break
        chosen.append(best)
        i = frames.index(best)
        values = values * np.divide(keyed_at(i, old), old, out=np.ones_like(old), where=old > 0)
    return chosen


def build_review(
    frames: Sequence[int],
    keyframes: Sequence[int],
    trimap_stats: Mapping[int, TrimapStats],
    residuals: Mapping[int, float | None] | None = None,
    *,
    threshold: float = THRESHOLD,
    count: int = SUGGESTIONS,
    bands: Mapping[int, int] | None = None,
    shot: Sequence[int] | None = None,
    unlike: Iterable[int] = (),
    cuts: Iterable[int] = (),
) -> Review:
    """The review of ``frames`` from the trimap stage's per-frame stats and the matte
    residuals (pixels per frame, the mean over its neighbours; missing: no matte doubt).
    ``bands``: the unknown band of frames without stats (their edge size: from the alphas'
    records, else their trimap files). ``shot``: every frame of the shot, where ``frames``
    are part of it (a run of some frames): distances to the ``keyframes`` are counted in
    it, so keyframes outside the frames reviewed still bound them. ``unlike``: frames the
    flow follows to neither neighbour (their matte doubt is at least :data:`UNLIKE_DOUBT`);
    ``cuts``: frames it does not follow to the next (see :func:`trimap_ratios`)."""
    frames, cuts = sorted(frames), sorted(cuts)
    positions = sorted(set(shot or ()) | set(frames))
    keys = sorted(k for k in keyframes if k in set(positions))
    crossed: set[int] = set()  # frames every pass reached across a cut: their doubt is no guess
    measured = shot_drift(positions, trimap_stats, keys)
    t_ratio = trimap_ratios(positions, trimap_stats, keys, measured, cuts, crossed)
    key_bands = [trimap_stats[k].unknown for k in keys if k in trimap_stats]
    key_band = float(np.median(key_bands)) if key_bands else 0.0
    rows: list[FrameDoubt] = []
    for f in frames:
        s = trimap_stats.get(f)
        edge = edge_scale(s.unknown if s else (bands or {}).get(f, 0), key_band)
        residual = None if residuals is None else residuals.get(f)
        td = squash(t_ratio.get(f, 0.0))
        md = 0.0 if residual is None else squash(residual / edge)
        if f in unlike and f not in keys:
            md = max(md, UNLIKE_DOUBT)
        rows.append(FrameDoubt(
            frame=f, trimap_doubt=round(td, 6), matte_doubt=round(md, 6), doubt=round(max(td, md), 6),
            keyframe=f in keys, edge=edge, disagreement=None if s is None else s.disagreement,
            residual=residual,
        ))
    doubt = {r.frame: r.doubt for r in rows}
    review = Review(
        keyframes=keys,
        frames=rows,
        suggested=suggest(positions, doubt, keys, count, candidates=frames, cuts=cuts),
        doubtful=[r.frame for r in rows if r.doubt > threshold],
        threshold=threshold,
    )
    if trimap_stats and measured is None:
        # every frame one pass decides: its trimap doubt is DEFAULT_DRIFT times its distance, a guess
        guessed = [f for f in frames if f not in keys and f not in crossed and t_ratio.get(f, 0.0) > 0 and (
            trimap_stats.get(f) is None or trimap_stats[f].disagreement is None)]
        if guessed:
            review.extra["estimated"] = format_range(guessed)
    return review


# ----- files -------------------------------------------------------------------------------------
def _signature(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def trimap_record(trimap: np.ndarray, disagreement: float | None, keyframe: bool) -> dict[str, Any]:
    """What the trimap stage records about a frame for the review, kept in the frame's record
    (:class:`tcvom.farm.records.FrameRecords`, field ``review``) beside the trimaps, so it
    lives exactly as long as the trimap it describes."""
    counts = class_counts(trimap)
    return {
        "keyframe": bool(keyframe),
        "unknown": counts["unknown"],
        "foreground": counts["foreground"],
        "disagreement": None if disagreement is None else float(disagreement),
    }


class TrimapOutput:
    """One output's trimaps as the review reads them, each file once however many questions
    are asked: the frames' records, the keyframes its last trimap stage kept
    (:func:`record_keyframes`) and their segments (:func:`_schedule_now`)."""

    def __init__(self, pattern: str | Path) -> None:
        from tcvom.farm.records import FrameRecords

        self.pattern = str(pattern)
        self.records = FrameRecords(self.pattern)

    @functools.cached_property
    def _kept(self) -> Any:
        """What :func:`record_keyframes` wrote (None: nothing readable, an older version)."""
        from tcvom.farm.manifest import records_folder

        try:
            return json.loads((records_folder(self.pattern) / KEYFRAMES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @functools.cached_property
    def now(self) -> dict[int, str] | None:
        """The keyframes :func:`record_keyframes` kept; None where none are (an older version)."""
        try:
            return {int(k): str(v) for k, v in self._kept["keyframes"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @functools.cached_property
    def settings(self) -> dict[str, Any] | None:
        """The settings of the trimap stage's manifest (None: none readable, an older output)."""
        from tcvom.farm import manifest

        try:
            return dict(manifest.read_manifest(manifest.manifest_path(self.pattern)).settings)
        except (InputError, TypeError, ValueError):
            return None

    @functools.cached_property
    def planned(self) -> tuple[Any, bool] | None:
        return _schedule_now(self.settings, self.now)

    @functools.cached_property
    def keyframe_files(self) -> dict[int, dict[str, Any]]:
        """The keyframe files' states :func:`record_keyframes` kept (none: an older version's)."""
        try:
            return {int(k): dict(v) for k, v in self._kept.get("files", {}).items()
                    if isinstance(v, dict) and isinstance(v.get("path"), str)}
        except (ValueError, TypeError, AttributeError):
            return {}


def _output(trimaps: str | Path | TrimapOutput) -> TrimapOutput:
    return trimaps if isinstance(trimaps, TrimapOutput) else TrimapOutput(trimaps)


def _records(pattern: str | Path | FrameRecords) -> FrameRecords:
    """The records of an output sequence: ``pattern`` itself where it is its
    :class:`~tcvom.farm.records.FrameRecords` already (read once by the review's questions)."""
    from tcvom.farm.records import FrameRecords

    return pattern if isinstance(pattern, FrameRecords) else FrameRecords(str(pattern))


def read_trimap_stats(trimap_pattern: str | Path | TrimapOutput, frames: Iterable[int]) -> dict[int, TrimapStats]:
    """The review figures of ``frames`` whose record still describes the trimap on disk
    (others are left out: written by an older tcvom, or rewritten since)."""
    records = _output(trimap_pattern).records
    out: dict[int, TrimapStats] = {}
    for f in frames:
        record = records.get(int(f))
        data = None if record is None else record.get("review")
        if not isinstance(data, dict) or records.recorded_file(int(f)) is None:
            continue
        try:
            out[int(f)] = TrimapStats(int(f), bool(data["keyframe"]), int(data["unknown"]), int(data["foreground"]),
                                      None if data["disagreement"] is None else float(data["disagreement"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def recorded_keyframes(trimap_pattern: str | Path | TrimapOutput, frames: Iterable[int]) -> set[int]:
    """The keyframes the trimaps of ``frames`` were propagated from, as their records name
    them (``keyframes``: ``1001=sha256:..., 1020=sha256:...``)."""
    records = _output(trimap_pattern).records
    found: set[int] = set()
    for f in frames:
        stamp = (records.get(int(f)) or {}).get("keyframes")
        for item in stamp.split(", ") if isinstance(stamp, str) else ():
            frame, sep, _ = item.partition("=")
            if sep and frame.lstrip("-").isdigit():
                found.add(int(frame))
    return found


KEYFRAMES_FILE = "keyframes.json"
"""In an output's trimap records folder: the keyframes (``{frame: digest}``) of the trimap
stage that last wrote a trimap or ended, whatever it computed or reused, and their files'
states as it read them (``files``: ``{frame: {"path", "size", "mtime_ns", ..., "sha256"}}``)."""


def keyframe_file_states(files: Mapping[int, str | Path],
                         known: Mapping[int, Mapping[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """The states (:meth:`tcvom.farm.records.FileDigests.state`, with the absolute path) of
    the keyframe files a trimap stage reads, taken before it reads them; ``known``: those the
    last stage kept (:attr:`TrimapOutput.keyframe_files`), so that an unchanged file is not
    hashed again."""
    from tcvom.farm.records import FileDigests

    digests = FileDigests({str(v["path"]): v for v in (known or {}).values()})
    out = {}
    for f, p in files.items():
        state = {k: v for k, v in digests.state(p).items() if k != "path"}
        out[int(f)] = {"path": str(Path(p).absolute()), **state}
    return out


def record_keyframes(trimap_pattern: str | Path, keyframes: Mapping[int, str],
                     files: Mapping[int, Mapping[str, Any]] | None = None) -> None:
    """Keep the keyframes a trimap stage runs with (:data:`KEYFRAMES_FILE`): a stage that
    reuses every trimap of its frames writes no record that would say them; ``files``: their
    files' states (:func:`keyframe_file_states`), by which the review finds a keyframe
    repainted after the stage (a farm job's Trimaps step) read it."""
    from tcvom.farm.manifest import records_folder

    folder = records_folder(trimap_pattern)
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"keyframes": {str(k): v for k, v in sorted(keyframes.items())}}
    if files:
        data["files"] = {str(k): dict(v) for k, v in sorted(files.items())}
    write_text(folder / KEYFRAMES_FILE, json.dumps(data))


def trimaps_behind(trimap_pattern: str | Path | TrimapOutput, frames: Iterable[int]) -> list[int]:
    """The frames whose trimap (as its record says, where it still describes the file) the
    keyframes as they are now would seed otherwise than its record's ``seeds`` (keyframe:
    digest) say (a keyframe added, removed or repainted since, in a keyframe segment not run
    again: a farm job written before the edit numbers its segments by the keyframes then;
    ``run --frames`` of another part of the shot). The keyframes now are those the trimap
    stage that ran last kept (:func:`record_keyframes`); the segments are the scheduler's
    (:class:`~tcvom.propagation.scheduler.KeyframeSchedule`), as the trimap stage makes them.
    Outputs of older versions (no ``seeds``, no kept keyframes) are not judged."""
    from tcvom.propagation.scheduler import segment_seeds

    output = _output(trimap_pattern)
    now, planned = output.now, output.planned
    if now is None or planned is None:
        return []
    schedule, shot_wide = planned
    keys = sorted(now)
    records = output.records
    members = set(schedule.frame_numbers)
    behind = []
    for f in frames:
        record = records.get(int(f)) if f in members else None
        seeds = (record or {}).get("seeds")
        if not isinstance(seeds, dict) or records.recorded_file(int(f)) is None:
            continue
        if f in now:  # a keyframe's file holds its keyframe: stale where it was none, or was painted otherwise
            review = record.get("review") if record is not None else None
            if not (isinstance(review, dict) and review.get("keyframe") is True) or seeds.get(str(f)) != now[f]:
                behind.append(int(f))
            continue
        wanted = {str(k): now[k] for k in segment_seeds(schedule.segment_of(f), keys, shot_wide)}
        if seeds != wanted:
            behind.append(int(f))
    return behind


def _schedule_now(settings: Mapping[str, Any] | None, now: Mapping[int, str] | None) -> tuple[Any, bool] | None:
    """The keyframe segments of the keyframes ``now`` over the shot the trimap stage's
    manifest ``settings`` name, and whether they are seeded shot-wide (STM fine-tuned on the
    whole shot); None where either is not known (an output of an older version: not judged)."""
    from tcvom.propagation.scheduler import KeyframeSchedule

    if not now or settings is None:
        return None
    try:
        options = settings.get("options") or {}
        shot_wide = settings.get("method") == "tcvom" and bool(options.get("finetune_steps")) \
            and options.get("finetune_scope") == "shot"
        return KeyframeSchedule(parse_frame_range(str(settings["shot"])), sorted(now)), shot_wide
    except (InputError, KeyError, TypeError, ValueError, AttributeError):  # one that says no shot: not judged
        return None


def trimaps_of_changed_plates(trimap_pattern: str | Path | TrimapOutput, frames: str | int | Iterable[int],
                              alpha_pattern: str | Path | FrameRecords | None = None) -> list[int]:
    """The frames whose trimap was propagated from plate frames changed since (re-rendered
    while a farm job ran, between its Trimaps and Matte steps): the frames of each keyframe
    segment one of whose trimaps' records names a plate file that now holds other content (a
    segment seeded shot-wide names every keyframe's plate frame in its first record). Plate
    files that are gone or moved are not judged; unchanged ones are not read again (their size
    and times as the trimaps' records, or the alphas' of ``alpha_pattern``, which the matte
    stage keeps fresh, say)."""
    from tcvom.farm.records import FileDigests

    frames = frame_selection(frames, what="review frame")  # a range as the API's other frames; None refused
    output = _output(trimap_pattern)
    if output.planned is None:
        return []
    schedule, _ = output.planned
    records = output.records
    files = FileDigests(_records(alpha_pattern).input_states() if alpha_pattern is not None else None)
    files.learn(records.input_states())

    def changed(frame: int) -> bool:
        record = records.get(frame)
        if record is None or records.recorded_file(frame) is None:
            return False
        inputs = record.get("inputs")
        return isinstance(inputs, dict) and any(
            isinstance(state, dict) and _other_content(files, path, state) for path, state in inputs.items())

    # shot-wide seeds read every keyframe's plate frame, which each segment's first record names
    stale = [s for s in schedule.segments if any(changed(f) for f in s.outputs)]
    members = {f for s in stale for f in s.outputs}
    return [int(f) for f in frames if f in members]


def trimaps_of_changed_keyframes(trimap_pattern: str | Path | TrimapOutput, frames: str | int | Iterable[int],
                                 plate: Any = None) -> tuple[list[int], list[int]]:
    """(the keyframes whose file now holds another trimap than the trimap stage that ran
    last read, the frames whose trimap such a keyframe seeded): a keyframe repainted while a
    farm job ran, between its Trimaps and Matte steps. A file of other bytes is decoded as
    that stage read it (its ``trimap_channel`` and ``resize_trimaps``, on ``plate``): saved
    again with the same pixels, it is the same keyframe (without ``plate``, by its bytes).
    Keyframe files gone, moved or unreadable are not judged; unchanged ones are not read
    again (their size and times as kept)."""
    from tcvom.farm.records import FileDigests

    frames = frame_selection(frames, what="review frame")
    output = _output(trimap_pattern)
    kept = output.keyframe_files
    digests = FileDigests({state["path"]: state for state in kept.values()})

    def repainted(frame: int, state: Mapping[str, Any]) -> bool:
        if not _other_content(digests, state["path"], state):
            return False
        return plate is None or _decoded_digest(output, plate, frame, state["path"]) != (output.now or {}).get(frame)

    changed = sorted(k for k, state in kept.items() if repainted(k, state))
    if not changed:
        return [], []
    records = output.records
    stale = []
    for f in frames:
        record = records.get(int(f))
        seeds = (record or {}).get("seeds")
        if f in changed or (isinstance(seeds, dict) and records.recorded_file(int(f)) is not None
                            and any(str(k) in seeds for k in changed)):
            stale.append(int(f))
    return changed, stale


def _other_content(files: Any, path: str, state: Mapping[str, Any]) -> bool:
    """Whether the file at ``path`` now holds other content than ``state`` says (gone,
    moved or unreadable to this user: not judged)."""
    try:
        return os.path.isfile(path) and files.sha256(path) != state.get("sha256")
    except OSError:
        return False


def _decoded_digest(output: TrimapOutput, plate: Any, frame: int, path: str) -> str | None:
    """The digest of keyframe ``path`` as the trimap stage of ``output`` read it (None: it no
    longer reads as a keyframe of the plate)."""
    from tcvom.farm.records import array_digest
    from tcvom.io.sources import open_trimaps

    settings = output.settings or {}
    try:
        keys = open_trimaps({frame: path}, plate=plate, resize=bool(settings.get("resize_trimaps")),
                            channel=str(settings.get("trimap_channel") or "luma"), what="keyframe trimap",
                            contiguous=False, painted=True)
        return array_digest(keys.read(frame))
    except (TcvomError, OSError):
        return None


def matte_residuals(
    frames: Any, alpha_pattern: str, review_folder: str | Path, shot: Sequence[int] | None = None,
    *, keyframes: Iterable[int] = (), progress: ProgressMode = "none",
) -> tuple[dict[int, float | None], set[int], set[int]]:
    """Mean unexplained alpha change of every frame against its neighbours (pixels), reusing the
    cached values of frames whose alpha files (and their neighbours') have not changed, the
    frames the flow follows to neither of their two neighbours, and the frames after which
    the picture cuts to another (:func:`tcvom.classical.flow.cut_pairs` of the shares the flow
    follows from each frame to the next one matted, :meth:`~tcvom.classical.flow.FlowEstimator.share`:
    the cuts the trimap stage finds; a frame of ``keyframes`` unlike both neighbours has a cut on
    either side, as there).

    ``frames`` is the plate (a :class:`~tcvom.io.sources.FrameSource`); a frame is compared
    with the nearest frames on either side that have an alpha file. Frames without an alpha
    file are left out; one without another to compare with (on its side of a cut) is None
    (its matte doubt is unknown).
    """
    from tcvom.classical.flow import FlowEstimator
    from tcvom.io.sequence import frame_path
    from tcvom.review.preview import alpha_reader

    shot = list(shot if shot is not None else frames.frame_numbers)
    cache_path = Path(review_folder) / "matte.cache.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    sig = {f: _signature(frame_path(alpha_pattern, f)) for f in shot}
    read_alpha = alpha_reader(alpha_pattern)
    estimator = FlowEstimator()
    pair_cache: dict[tuple[int, int], tuple[float, float]] = {}
    loaded: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def data(f: int) -> tuple[np.ndarray, np.ndarray]:
        if f not in loaded:
            if len(loaded) > 3:
                loaded.pop(min(loaded))
            loaded[f] = (frames.read(f), read_alpha(f))
        return loaded[f]

    def pair(a: int, b: int) -> tuple[float, float]:
        if (a, b) not in pair_cache:
            (ia, aa), (ib, ab) = data(a), data(b)
            pair_cache[(a, b)] = alpha_change(ia, aa, ib, ab, estimator)
        return pair_cache[(a, b)]

    changes_of: dict[int, list[tuple[int, float]]] = {}  # frame -> (neighbour, unexplained change)
    unlike: dict[int, float] = {}  # frame unlike both neighbours -> the share they follow each other
    shares: dict[int, float] = {}  # frame -> share followed to the next frame with an alpha
    fresh: dict[str, Any] = {}
    with Progress("review", len(shot), progress) as bar:
        # Each frame with an alpha is compared with the nearest ones with an alpha on either
        # side: the shot's neighbours, or, where those have none (--frames 1001-1100x2, a frame
        # removed), the next ones matted.
        matted = [f for f in shot if sig[f] is not None]
        position = {f: i for i, f in enumerate(matted)}
        for f in shot:
            bar.advance(frame=f)
            if f not in position:
                continue
            i = position[f]
            neighbours = matted[max(i - 1, 0):i] + matted[i + 1:i + 2]
            if not neighbours:  # the only alpha: nothing to compare with, its matte doubt is unknown
                changes_of[f] = []
                continue
            key = [sig[f], *[[n, sig[n]] for n in neighbours]]
            cached = cache.get(str(f))
            if cached is not None and cached.get("inputs") == key and {"changes", "between", "share"} <= set(cached):
                values, between, share = [float(v) for v in cached["changes"]], cached["between"], cached["share"]
            else:
                changes = [pair(f, n) for n in neighbours]
                values = [c[0] for c in changes]
                share = changes[-1][1] if neighbours[-1] > f else None  # followed to the next frame with an alpha
                # judged as the trimap stage judges it: the previous frame followed into this one
                # (its share, found before), this one into the next
                between = unlike_between([shares[neighbours[0]], share], data(neighbours[0])[0], data(neighbours[1])[0],
                                         estimator) if len(changes) == 2 and share is not None else None
            changes_of[f] = list(zip(neighbours, values, strict=True))
            if between is not None:
                unlike[f] = float(between)
            if share is not None:
                shares[f] = float(share)
            fresh[str(f)] = {"inputs": key, "changes": values, "between": between, "share": share}
    folder = Path(review_folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fresh != cache:  # unchanged: the file stays as it is
        write_text(cache_path, json.dumps(fresh))
    # the cuts the trimap stage's ensemble finds (tcvom.propagation.ensemble.read_pictures)
    cuts = set(cuts_over(matted, [shares[f] for f in matted[:-1]], unlike))
    for f in set(unlike).intersection(keyframes):  # a keyframe unlike both neighbours is a picture of its own
        cuts.update((matted[position[f] - 1], f))
    out: dict[int, float | None] = {}
    for f, changes in changes_of.items():
        # across a cut the alpha is another picture's: only the neighbour on the frame's own side
        # counts (a cut has a followed pair beside it); with none, the matte doubt is unknown (None)
        same = [value for n, value in changes if not (f in cuts if n > f else n in cuts)]
        out[f] = float(np.mean(same)) if same else None
    return out, set(unlike), cuts


CSV_FIELDS: tuple[str, ...] = ("frame", "keyframe", "trimap_doubt", "matte_doubt", "doubt", "doubtful",
                               "suggested_rank", "edge", "disagreement", "residual")


REVIEW_FOLDER_HINT = "the review is written in the output's review folder: make it writable"


def write_review(review: Review, folder: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write ``review.json``, ``review.csv`` and ``review.png`` into ``folder`` (atomically:
    all three are written under temporary names, then renamed, review.json last, so that it
    never names a review whose other files are older; a write stopped before the renames
    leaves the review that was there). A
    review equal to the one there (a rerun that reused every frame) leaves the files
    untouched."""
    from tcvom.io.atomic import ensure_writable_folder, move_into_place, temporary_name
    from tcvom.review.plot import plot_review

    out = ensure_writable_folder(folder, hint=REVIEW_FOLDER_HINT)
    paths = {"json": out / "review.json", "csv": out / "review.csv", "png": out / "review.png"}
    data = json.dumps(review.as_dict(), indent=1) + "\n"
    try:
        if paths["json"].read_text(encoding="utf-8") == data and paths["csv"].is_file() and paths["png"].is_file():
            return paths
    except (OSError, UnicodeDecodeError):
        pass  # none there, or unreadable: write it
    rank = {f: i + 1 for i, f in enumerate(review.suggested)}
    doubtful = set(review.doubtful)
    # all three written beside their names first, then put in place one after the other: an
    # interrupted write (Ctrl-C, a full disk) leaves the review there was, whole
    staged = {key: temporary_name(path) for key, path in paths.items()}
    placed: list[Path] = []
    try:
        write_csv(staged["csv"], CSV_FIELDS, ({
            "frame": r.frame, "keyframe": int(r.keyframe), "trimap_doubt": r.trimap_doubt,
            "matte_doubt": r.matte_doubt, "doubt": r.doubt, "doubtful": int(r.frame in doubtful),
            "suggested_rank": rank.get(r.frame, ""), "edge": r.edge,
            "disagreement": "" if r.disagreement is None else round(r.disagreement, 3),
            "residual": "" if r.residual is None else round(r.residual, 3),
        } for r in review.frames), lineterminator="\n")
        plot_review(review, staged["png"], title=title)
        write_text(staged["json"], data)
        for key in ("csv", "png", "json"):  # review.json last: it never names older files
            move_into_place(staged[key], paths[key])
            placed.append(paths[key])
    except BaseException as exc:
        for path in staged.values():
            path.unlink(missing_ok=True)
        if placed:  # stopped between the renames: no set of files from two reviews
            for path in paths.values():
                path.unlink(missing_ok=True)
        finals = {str(staged[key]): paths[key] for key in paths}
        if isinstance(exc, TcvomError) and exc.path in finals:  # a full disk named the hidden staged name
            exc.path = str(finals[exc.path])
            exc.args = (str(exc),)  # as raised with it (repr, a pickled copy)
        raise
    return paths


def load_review(path: str | Path) -> Review:
    """Read ``review.json`` (or the folder holding it). Raises InputError (exit 2) when it is
    missing, not JSON or of another schema version."""
    file = find_review(path) / "review.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if file.parent.name != REVIEW_FOLDER:  # an output folder without review/: name where it would be
            file = file.parent / REVIEW_FOLDER / "review.json"
        raise InputError("there is no review here", path=file,
                         hint=f"`tcvom review {command_word(file.parent.parent)} --rebuild` makes it from the "
                         "output's files (a run writes it unless given --no-review)") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"the review cannot be read ({exc})", path=file) from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        got = data.get("version") if isinstance(data, dict) else None
        raise InputError(f"the review has schema version {got!r}, this tcvom reads version {VERSION}", path=file)
    try:
        rows = [
            FrameDoubt(
                frame=int(r["frame"]), trimap_doubt=float(r["trimap_doubt"]), matte_doubt=float(r["matte_doubt"]),
                doubt=float(r["doubt"]), keyframe=bool(r.get("keyframe", False)), edge=float(r.get("edge", 0.0)),
                disagreement=None if r.get("disagreement") is None else float(r["disagreement"]),
                residual=None if r.get("residual") is None else float(r["residual"]),
            )
            for r in data["frames"]
        ]
        known = {"version", "keyframes", "frames", "suggested", "doubtful", "threshold"}
        return Review(
            keyframes=[int(k) for k in data["keyframes"]],
            frames=rows,
            suggested=[int(f) for f in data["suggested"]],
            doubtful=[int(f) for f in data["doubtful"]],
            threshold=float(data.get("threshold", THRESHOLD)),
            extra={k: v for k, v in data.items() if k not in known},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the review misses or mangles a field ({exc})", path=file) from exc


def table(review: Review, *, limit: int | None = None) -> str:
    """The review as a text table (every frame, or the ``limit`` most doubtful) with the
    suggestions below it."""
    rows = review.frames
    if limit is not None:
        rows = sorted(sorted(rows, key=lambda r: -r.doubt)[:limit], key=lambda r: r.frame)
    rank = {f: i + 1 for i, f in enumerate(review.suggested)}
    matted = (review.extra.get("sources") or {}).get("alpha") is not None
    wide = max([7, *(len(str(r.frame)) for r in rows)])  # frames up to 2147483647, or negative
    lines = [f"{'frame':>{wide}}  {'trimap':>6}  {'matte':>6}  {'doubt':>6}  note"]
    for r in rows:
        notes = []
        unknown = matted and r.residual is None
        if r.keyframe:
            notes.append("keyframe")
        if unknown:  # shown as n/a, not as a confident 0
            notes.append("matte doubt unknown (no alpha file, or none to compare with)")
        if r.doubt > review.threshold:
            notes.append("doubtful")
        if r.frame in rank:
            notes.append(f"suggested #{rank[r.frame]}")
        bar = "#" * math.floor(r.doubt * 20)
        matte = f"{'n/a':>6}" if unknown else f"{r.matte_doubt:6.3f}"
        lines.append(f"{r.frame:>{wide}}  {r.trimap_doubt:6.3f}  {matte}  {r.doubt:6.3f}  {bar:<20} " + ", ".join(notes))
    lines.append("")
    if review.extra.get("not_reviewed"):
        lines.append(f"not reviewed (no trimap or alpha yet): {review.extra['not_reviewed']}")
    if review.extra.get("not_matted"):
        lines.append(f"not matted (a trimap, no alpha yet: its trimap doubt only): {review.extra['not_matted']}")
    if review.extra.get("out_of_date"):
        lines.append(f"out of date (alphas of trimaps changed since, or trimaps of other keyframes or plate frames "
                     f"than now; run again): {review.extra['out_of_date']}")
    if review.extra.get("estimated"):
        lines.append(f"trimap doubt guessed from distance (no two-pass frame measures the drift): "
                     f"{review.extra['estimated']}")
    shot = [r.frame for r in review.frames]  # a shot on twos: "50-78x2", as the run said it
    past = [format_range([f for f in shot if a <= f <= b]) or f"{a}-{b}" for a, b in review.extra.get("past_cut") or []]
    if past:  # what the run warned of, for an artist who opens the review later
        lines.append(f"past a cut from every keyframe (paint a keyframe in each): {', '.join(past)}")
    lines.append(f"keyframes: {', '.join(map(str, review.keyframes)) or 'none'}")
    lines.append(f"doubtful (doubt > {review.threshold:g}): {', '.join(map(str, review.doubtful)) or 'none'}")
    lines.append(f"key next: {', '.join(map(str, review.suggested)) or 'nothing to suggest'}")
    return "\n".join(lines)


def review_output(
    plate: Any,
    folder: str | Path,
    *,
    trimaps: str | Path | None = None,
    alpha: str | None = None,
    shot: Sequence[int] | None = None,
    sources: Mapping[str, Any] | None = None,
    progress: ProgressMode = "none",
    waiting: ProgressMode | None = None,
    say_left: bool = False,
) -> tuple[Review, dict[str, Path]]:
    """Build and write the review of an output: the trimap stats recorded beside ``trimaps``
    (a pattern) and the matte residuals of ``alpha`` (a pattern) on ``plate`` (a frame
    source), over ``shot`` (default: the plate's frames). Frames with neither are left out.
    ``sources`` (how to open the plate again: ``plate``, ``shot``, ``input_colorspace``,
    ``ocio_config``) is kept in the review so that :func:`rebuild_review` can redo it.

    Runs that finish together into one output (two ``tcvom run`` started at once) write
    the review one after the other, under a lock in ``folder`` (``.review.lock``): the later
    one finds the earlier one's cached residuals and writes the same bytes again, so the
    three files always belong together. ``waiting`` (default ``progress``) is how the wait for
    that lock is announced: a run whose review step is quiet still says why it waits.
    Frames of ``shot`` with neither are named in the review (``not_reviewed``), those with a
    trimap and no alpha (where ``alpha`` is given) too (``not_matted``), and with ``say_left``
    (a rebuild after a farm job) in a warning too."""
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    from tcvom.farm.locks import exclusive_lock
    from tcvom.io.atomic import ensure_writable_folder, remove_dead_temporaries

    lock = ensure_writable_folder(folder, hint=REVIEW_FOLDER_HINT) / ".review.lock"
    with exclusive_lock(lock, on_wait=_waiting(folder, waiting or progress)):
        remove_dead_temporaries(folder)  # of a run killed while writing the review
        return _review_output(plate, folder, trimaps=trimaps, alpha=alpha, shot=shot, sources=sources,
                              progress=progress, say_left=say_left)


def _review_output(
    plate: Any, folder: str | Path, *, trimaps: str | Path | None, alpha: str | None,
    shot: Sequence[int] | None, sources: Mapping[str, Any] | None, progress: ProgressMode, say_left: bool,
) -> tuple[Review, dict[str, Path]]:
    shot = list(shot if shot is not None else plate.frame_numbers)
    kept = TrimapOutput(trimaps) if trimaps is not None else None  # its records and keyframes, read once
    alphas = _records(alpha) if alpha is not None else None  # as the alphas' records
    stats = read_trimap_stats(kept, shot) if kept is not None else {}
    bands = read_alpha_bands(alphas, [f for f in shot if f not in stats]) if alphas is not None else {}
    if trimaps is not None:  # an output of an older tcvom keeps no band in its alpha records
        bands.update(_bands_of_files(plate, trimaps, [f for f in shot if f not in stats and f not in bands]))
    keys = {f for f, s in stats.items() if s.keyframe}
    if kept is not None:  # a run of part of the shot: its keyframes may lie outside it (a frame
        # with a trimap says itself whether it is one: a reused record may name a keyframe since removed)
        keys |= {k for k in recorded_keyframes(kept, stats) if k not in stats}
    # the output's own trimaps (not trimaps given from another output, whose keyframes are its own):
    # the keyframes now are those its last trimap stage ran with, whatever the reused trimaps say
    own = trimaps is not None and os.path.realpath(Path(str(trimaps)).parent) in {
        os.path.realpath(Path(folder).parent), os.path.realpath(Path(folder).parent / "trimaps")}
    now = kept.now if own and kept is not None else None
    if now:
        keys = set(now)
    residuals, unlike, cuts = matte_residuals(plate, alpha, folder, shot, keyframes=keys, progress=progress) \
        if alpha is not None else (None, set(), set())
    if residuals is None or any(f not in residuals for f in shot):
        # trimaps alone, or alphas of part of the shot (--frames, x2): the cuts the trimap stage
        # found are the plate's, over the whole shot (pairs of the frames matted miss or misplace them)
        from tcvom.propagation.ensemble import find_cuts

        cuts = set(find_cuts(plate, shot, keyframes=keys))
    covered = [f for f in shot if f in stats or (residuals is not None and f in residuals)]
    if not covered:
        raise InputError(
            "no frame of the shot has a trimap made by tcvom or an alpha file: nothing to review "
            f"(trimaps {trimaps or 'none'}, alpha {alpha or 'none'})", path=folder,
            hint="give the output folder that `tcvom run` or the farm job wrote into")
    review = build_review(covered, sorted(keys), stats, residuals, bands=bands, shot=shot, unlike=unlike, cuts=cuts)
    stranded = past_cuts(shot, keys, cuts, shown=covered)
    if stranded:  # said on every run, reused frames or not (the hosts show it; Blender in scene frames)
        review.extra["past_cut"] = [[g[0], g[-1]] for g in stranded]
        say_past_cuts(stranded, cuts)
    if review.extra.get("estimated"):  # counted, not named: hosts number frames otherwise (the review names them)
        log.warning("the trimap doubt of %d frame(s) is a guess from their distance to a keyframe: each is decided by "
                    "one propagation pass, and no frame lies between two keyframes (of one picture) to measure how "
                    "fast this shot's trimaps drift, so 'not doubtful' says little there; look at them, or key one "
                    "more frame", len(parse_frame_range(review.extra["estimated"])))
    # an interrupted run after an edit, or a run of part of the shot after one (--frames): in the
    # review on every run, and said by a rebuild (a run says it in its own plan)
    behind = alphas_behind(alphas, kept, covered) if alphas is not None and kept is not None else []
    keyed_since = trimaps_behind(kept, covered) if own and kept is not None else []
    replated = trimaps_of_changed_plates(kept, covered, alphas) if own and kept is not None else []
    repainted, rekeyed = trimaps_of_changed_keyframes(kept, covered, plate) if own and kept is not None else ([], [])
    near: set[int] = set()  # the alphas whose window holds such a trimap (as a run plans them)
    if (keyed_since or replated or rekeyed) and alpha is not None:
        from tcvom.matting.window import neighbour_window

        reviewed = set(covered)
        # a keyframe's trimap is the keyframe, whatever the plate: a rerun leaves its file, and the
        # alphas beside it (farm QA: the review named one more alpha than `farm plan --out` redoes)
        changing = {*keyed_since, *rekeyed, *(t for t in replated if t not in (now or {}))}
        near = {f for t in changing for f in neighbour_window(t, shot) if f in reviewed}
    if behind or keyed_since or replated or rekeyed:
        review.extra["out_of_date"] = format_range(sorted({*behind, *keyed_since, *replated, *rekeyed, *near}))
    keyed = set(keyed_since)
    rekeyed = [f for f in rekeyed if f not in keyed]
    if rekeyed and say_left:
        log.warning("%s: the keyframe file(s) of frame(s) %s changed since the trimaps were made (repainted while the "
                    "job ran?): the trimaps of frame(s) %s, and the alphas beside them, are out of date; `tcvom run` "
                    "the shot, or submit the farm job again (`tcvom farm plan --out OUT` lists its tasks)", folder,
                    format_range(repainted), format_range(rekeyed))
    keyed |= set(rekeyed)
    replated = [f for f in replated if f not in keyed]  # said once, as keyed since
    if replated and say_left:
        log.warning("%s: the trimaps of frame(s) %s were propagated from plate frames changed since (re-rendered "
                    "while the job ran?): they, and the alphas beside them, are out of date; `tcvom run` the shot, or "
                    "submit the farm job again (`tcvom farm plan --out OUT` lists its tasks)", folder,
                    format_range(replated))
    if keyed_since and say_left:
        log.warning("%s: the trimaps of frame(s) %s were propagated from other keyframes than the keyframes now "
                    "would propagate them from (a keyframe added, removed or repainted since, in a keyframe segment "
                    "not run again): they, and the alphas beside them, are out of date. A farm job written before "
                    "the keyframes changed numbers its segments by the keyframes then: write it again (`tcvom farm "
                    "template ... --out OUT`), or `tcvom run` the shot", folder, format_range(keyed_since))
    said = set(keyed_since) | set(replated) | near
    behind = [f for f in behind if f not in said]  # said once, as keyed since
    if behind and say_left:
        log.warning("%s: the alphas of frame(s) %s were matted from trimaps made again since (an interrupted run?): "
                    "they are out of date, and reviewed as they are, until `tcvom run` (or the farm job) matte them "
                    "again", folder, format_range(behind))
    left = [f for f in shot if f not in set(covered)]
    if left:  # a partial farm run: named in the review, and by a rebuild, not dropped without a word
        review.extra["not_reviewed"] = format_range(left)
    if left and say_left:
        log.warning("%s: frame(s) %s of the shot have neither a trimap made by tcvom nor an alpha yet (a partial "
                    "run?): not reviewed", folder, format_range(left))
    # farm QA: a matte task not run (or failed and marked done) left frames with a trimap and no
    # alpha, whose matte doubt read 0, a perfect matte, in review.json, and the rebuild said nothing
    unmatted = [f for f in covered if f not in residuals] if residuals is not None else []
    if unmatted:
        review.extra["not_matted"] = format_range(unmatted)
    if unmatted and say_left:
        log.warning("%s: frame(s) %s have a trimap but no alpha yet (a matte task not run, or failed?): only their "
                    "trimap doubt is reviewed (their matte_doubt 0 measures nothing)", folder, format_range(unmatted))
    review.extra["sources"] = {
        **dict(sources or {}),
        "trimaps": _relative_to(trimaps, folder),
        "alpha": _relative_to(alpha, folder),
        "relative_to": "review",
    }
    title = f"doubt per frame: {len(review.doubtful)} doubtful of {len(covered)}"
    return review, write_review(review, folder, title=title)


def alphas_behind(alpha_pattern: str | Path | FrameRecords, trimap_pattern: str | Path | TrimapOutput, frames: Iterable[int]) -> list[int]:
    """The frames whose alpha (as its record says, where it still describes the file) was
    matted from a trimap whose file has since been made again: the trimap stage of a run
    after an edit finished and its matte stage was stopped. An input is one of the trimaps
    by its path, or, where that path names nothing now (the output folder moved), by its
    folder's and its own name; trimaps tcvom did not make (``run --trimaps`` of painted ones)
    by their content now (an edited one)."""
    from tcvom.farm.records import FileDigests

    frames = list(frames)
    alphas, trimaps = _records(alpha_pattern), _output(trimap_pattern).records
    trimap_pattern = trimaps.pattern
    digests: dict[str, str] = {}  # the trimap files by their real path, and by their folder's and own name
    for f in trimaps.frames():
        record = trimaps.get(f)
        if record is not None and trimaps.recorded_file(f) is not None:
            path = _frame_file(trimap_pattern, f)
            digests[path] = digests[os.path.join(*Path(path).parts[-2:])] = str(record.get("sha256"))
    # trimaps tcvom did not make (given, painted elsewhere): their files, judged by their content
    # (hashed only where size, times or inode changed since the alpha recorded them)
    given = {_frame_file(trimap_pattern, f) for f in frames} - set(digests)
    files = FileDigests()

    def current(path: str, state: Mapping[str, Any]) -> str | None:
        """The digest of the reviewed trimap an alpha's input ``path`` is: that very file, or
        where the path names nothing now (the output folder moved), the one of its name."""
        real = os.path.realpath(path)
        if real in digests:
            return digests[real]
        if real in given and os.path.isfile(real):
            files.learn({str(Path(path).absolute()): state})
            return files.sha256(path)
        return None if os.path.exists(path) else digests.get(os.path.join(*Path(path).parts[-2:]))

    behind = []
    for f in frames:
        record = alphas.get(int(f))
        if record is None or alphas.recorded_file(int(f)) is None:
            continue
        for path, state in (record.get("inputs") or {}).items():
            digest = current(str(path), state) if isinstance(state, dict) else None
            if digest is not None and state.get("sha256") != digest:
                behind.append(int(f))
                break
    return behind


def read_alpha_bands(alpha_pattern: str | Path | FrameRecords, frames: Iterable[int]) -> dict[int, int]:
    """The unknown band (pixels) of the given trimap each alpha of ``frames`` was matted
    from, kept in the alpha's record by ``tcvom matte`` of trimaps tcvom did not make
    (decoded as the matte read them: channel, size, placement), where the record still
    describes the alpha on disk."""
    records = _records(alpha_pattern)
    bands: dict[int, int] = {}
    for f in frames:
        record = records.get(int(f))
        data = None if record is None else record.get("review")
        if isinstance(data, dict) and isinstance(data.get("unknown"), int) and records.recorded_file(int(f)):
            bands[int(f)] = int(data["unknown"])
    return bands


def _bands_of_files(plate: Any, trimaps: str | Path, frames: Sequence[int]) -> dict[int, int]:
    """The unknown band of the trimap files of ``frames``, decoded as a matte reads them by
    default (luminance, at the plate's size and placement); a file that is missing or that
    this cannot read is left out."""
    from tcvom.io.sequence import frame_path
    from tcvom.io.sources import TrimapFiles
    from tcvom.io.trimap import UNKNOWN

    files = {f: frame_path(str(trimaps), f) for f in frames}
    files = {f: path for f, path in files.items() if path.is_file()}
    if not files:
        return {}
    reader = TrimapFiles(files, size=(plate.width, plate.height), origin=plate.origin,
                         display=getattr(plate, "display", None))
    bands: dict[int, int] = {}
    for f in files:
        try:
            bands[f] = int(np.count_nonzero(reader.read(f) == UNKNOWN))
        except InputError:
            continue
    return bands


def _relative_to(pattern: str | Path | None, folder: str | Path) -> str | None:
    """``pattern`` as review.json keeps it: relative to the review folder, so that a copied
    or moved output, or a rebuild from another working folder, finds its own files
    (absolute only where no relative path exists, another drive)."""
    if pattern is None:
        return None
    try:
        return Path(os.path.relpath(Path(pattern).absolute(), Path(folder).absolute())).as_posix()
    except ValueError:
        return str(Path(pattern).absolute())


def alphas_gone(review: Review, folder: str | Path) -> list[int]:
    """The frames whose matte ``review`` (in ``folder``) judged and whose alpha file is gone
    since (deleted by hand, the matte made again in another format): their matte doubt
    describes no file."""
    from tcvom.io.sequence import frame_path

    sources = review.extra.get("sources") or {}
    alpha = _resolve_in(sources.get("alpha"), find_review(folder), sources)
    if alpha is None:
        return []
    return [r.frame for r in review.frames if r.residual is not None and not Path(frame_path(alpha, r.frame)).is_file()]


def _resolve_in(pattern: str | None, folder: Path, sources: Mapping[str, Any]) -> str | None:
    """A source pattern of review.json as a path: relative ones are to the review folder, or,
    in a review written before the sources said so (no ``relative_to``), as the run was
    given them (to the folder the run was started in)."""
    if pattern is None:
        return None
    if sources.get("relative_to") != "review":
        return pattern
    return os.path.normpath(folder.absolute() / pattern)


def _waiting(folder: str | Path, progress: ProgressMode) -> Any:
    """What a run says when another one holds the review lock of ``folder``."""
    return lambda: Progress("review", 0, progress).message(
        f"waiting for another run writing the review in {folder}")


def made_from(folder: str | Path, pattern: str | Path) -> bool:
    """Whether the review in ``folder`` was made from the files of ``pattern`` (its trimaps
    or its alpha): a stage run alone into the folders of a ``run`` output changes them."""
    folder = Path(folder)
    if not (folder / "review.json").exists():
        return False
    try:
        review = load_review(folder)
    except InputError:
        return False
    sources = dict(review.extra.get("sources") or {})
    # The same files, however the pattern is written (####, %04d, @; a link to the folder).
    frame = review.frames[0].frame if review.frames else 1
    target = _frame_file(pattern, frame)
    return any(found is not None and _frame_file(found, frame) == target
               for found in (_resolve_in(sources.get(k), folder, sources) for k in ("trimaps", "alpha")))


def _frame_file(pattern: str | Path, frame: int) -> str:
    from tcvom.io.sequence import frame_path

    try:
        return os.path.realpath(frame_path(str(pattern), frame))
    except InputError:  # not a sequence pattern
        return os.path.realpath(Path(pattern).absolute())


def invalidate_review(folder: str | Path, progress: ProgressMode = "none") -> bool:
    """Remove the review in ``folder`` (review.json, .csv, .png; the residual cache stays),
    under the review lock: its outputs are about to change, and a run killed before it
    writes a new review, or run without one, must not leave one that no longer describes
    them. Returns whether there was one."""
    from tcvom.farm.locks import exclusive_lock

    folder = Path(folder)
    if not (folder / "review.json").exists():
        return False
    with exclusive_lock(folder / ".review.lock", on_wait=_waiting(folder, progress)):
        for name in ("review.json", "review.csv", "review.png"):
            (folder / name).unlink(missing_ok=True)
    return True


def find_review(path: str | Path) -> Path:
    """The review folder of an output: ``path`` itself when it holds review.json, else
    ``path/review``; a path to review.json gives its folder."""
    p = Path(path_text(path, "the output folder", hint="give the folder `tcvom run --out` wrote into"))
    if p.name == "review.json":
        return p.parent
    if not p.exists():
        raise InputError("this folder does not exist", path=p,
                         hint="give the folder `tcvom run --out` wrote into (it holds review/review.json)")
    if p.is_file():
        raise InputError("this is a file, not an output folder", path=p,
                         hint="give the folder `tcvom run --out` wrote into (or its review/ or review.json)")
    if (p / "review.json").exists() or not (p / REVIEW_FOLDER).is_dir():
        return p
    return p / REVIEW_FOLDER


class AlphaGoneError(InputError):
    """Every alpha file a review was made from is gone (removed, or the matte was made again
    in another format or layout): a rebuild from them would review no matte."""


def check_given_plate(source: Any, patterns: Iterable[str | None]) -> None:
    """Refuse a plate given for a rebuild (``--plate``, the shot moved) whose frame is not the
    file the output was made from: the first frame recorded in the outputs' records (the
    alpha's, else the trimaps') must be among its record's inputs, byte for byte. A wrong
    plate was taken, written into the review's sources and read by every later rebuild."""
    from tcvom.farm.manifest import file_digest
    from tcvom.farm.records import FrameRecords

    shot = set(source.frame_numbers)
    for pattern in patterns:
        if pattern is None:
            continue
        records = FrameRecords(pattern)
        for frame in records.frames():
            record = records.get(frame)
            if frame not in shot or record is None:
                continue
            recorded = {state.get("sha256") for state in record.get("inputs", {}).values()}
            path = source.path(frame)
            if file_digest(path) not in recorded:
                raise InputError("this plate frame is not the one the output was made from", path=path, frame=frame,
                                 hint="give the plate this output was made from, where it is now; a plate changed "
                                 "since needs its matte made again (tcvom run)")
            return


def rebuild_review(path: str | Path, *, plate: str | None = None, ocio_config: str | None = None,
                   progress: ProgressMode = "none") -> Review:
    """Recompute an output's review from what its runs recorded (the trimap stats beside the
    trimaps, the alpha files; cached residuals of unchanged frames are reused) and write it.
    ``plate`` replaces the recorded plate path (the shot moved), ``ocio_config`` the
    recorded config (found elsewhere now). Frames whose alpha file is
    gone since are named in a warning (their matte doubt is unknown, 0).

    Raises:
        AlphaGoneError: none of the review's alpha files is left (``tcvom review --rebuild``
            then reviews the output's current matte, :func:`tcvom.pipeline.jobs.review_output`).
    """
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    from tcvom.io import open_frames

    check_text(plate, "plate (the plate's new place)", path=True)
    check_text(ocio_config, "ocio_config (an OpenColorIO config file or built-in config's name)", path=True)
    check_progress(progress)
    folder = find_review(path)
    old = load_review(folder)
    sources = dict(old.extra.get("sources") or {})
    alpha = _resolve_in(sources.get("alpha"), folder, sources)
    if alpha is not None:
        had = [r.frame for r in old.frames if r.residual is not None]
        gone = alphas_gone(old, folder)
        if had and len(gone) == len(had):
            raise AlphaGoneError(f"none of the alpha files this review was made from is left ({alpha})", path=folder,
                                 hint="run the matte again, or remove the review")
        if gone:
            log.warning("%s: frame(s) %s reviewed before have no alpha file any more: their matte doubt is unknown "
                        "(0 in the rebuilt review)", alpha, format_range(gone))
    spec = plate or sources.get("plate")
    if not spec:
        raise InputError("the review does not say which plate it was made from", path=folder / "review.json",
                         hint="give the plate (--plate)")
    if plate:
        sources["plate"] = str(Path(plate).absolute())
    if ocio_config:
        from tcvom.io.colour import config_reference

        sources["ocio_config"] = config_reference(ocio_config)
    try:
        source = open_frames(spec, sources.get("shot"), colorspace=sources.get("input_colorspace"),
                             ocio_config=sources.get("ocio_config"))
    except MissingFrameError as exc:
        if plate or exc.hint:
            raise
        exc.hint = "the review was made from this plate: if it has moved, give it where it is now (--plate)"
        raise
    trimaps = _resolve_in(sources.get("trimaps"), folder, sources)
    if plate:
        check_given_plate(source, (alpha, trimaps))
    review, _ = review_output(source, folder, trimaps=trimaps,
                              alpha=_resolve_in(sources.get("alpha"), folder, sources),
                              sources={k: v for k, v in sources.items() if k not in ("trimaps", "alpha", "relative_to")},
                              progress=progress, say_left=True)
    return review
