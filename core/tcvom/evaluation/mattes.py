"""``tcvom eval``: score alpha mattes against a VideoMatting108-layout dataset.

:func:`evaluate` scores a folder of predictions, or first runs a method
(:func:`tcvom.pipeline.matte` with the dataset's own trimaps) and scores its output.
It writes, under ``out``:

- ``frames.csv``: one row per width, clip and frame with every metric;
- ``clips.json``: per-clip averages per width, the overall averages and which flow was used;
- ``summary.md`` / ``summary.json``: the paper's table (rows narrow / medium / wide;
  MSE x1e3, SAD x1e3, SSDA, dtSSD, MESSDdt, plus Grad and Conn x1e-3);
- ``plots/<width>/<clip>_curves.png`` (per-frame SSDA and dtSSD) and
  ``plots/<width>/<clip>_worst.png`` (the worst frames: plate, truth, prediction, error).

Predictions are laid out as ``<predictions>/<width>/<category>/<clip>/<file>`` where each
file name ends in the 0-based frame index (``00012.png``, ``00012_pred.png``,
``alpha.0012.exr``...). Metrics are computed over the unknown region of the dataset's
trimap of that width. :func:`make_synthetic` writes a synthetic benchmark to score on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tcvom.data.synthetic import ShotConfig, write_benchmark
from tcvom.data.vm108 import TRIMAP_KERNELS, Clip, VideoMatting108
from tcvom.errors import (
    FrameSizeError,
    InputError,
    MissingFrameError,
    OutputError,
    check_choice,
    check_flag,
    check_text,
    compiled_imported_held,
)
from tcvom.evaluation.metrics import (
    METRIC_NAMES,
    ClipScorer,
    FrameScore,
    average_clips,
    average_frames,
    dis_flow,
)
from tcvom.io.atomic import FULL_HINT, atomic_output, write_csv, write_text
from tcvom.io.sequence import format_range
from tcvom.progress import Progress, ProgressMode

log = logging.getLogger("tcvom")

FLOW_MODES: tuple[str, ...] = ("auto", "png", "dis", "none")
# (key, column title, scale) in the paper's order; Grad and Conn follow the DIM convention.
TABLE_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("mse", "MSE (x1e3)", 1e3),
    ("sad", "SAD (x1e3)", 1e3),
    ("ssda", "SSDA", 1.0),
    ("dtssd", "dtSSD", 1.0),
    ("messddt", "MESSDdt", 1.0),
    ("grad", "Grad (x1e-3)", 1e-3),
    ("conn", "Conn (x1e-3)", 1e-3),
)
_FRAME_FILE = re.compile(r"(\d+)(?:_pred|_alpha)?\.(png|exr|tif|tiff)$", re.IGNORECASE)


@dataclass
class EvalReport:
    """What :func:`evaluate` measured and wrote."""

    summary: dict[str, dict[str, float]]
    clips: dict[str, dict[str, dict[str, float]]]
    flow: dict[str, int]
    outputs: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    scored: str | None = None
    """What was scored when no method ran: "predictions folder DIR" or "alpha sequence PATTERN"."""

    def table(self) -> str:
        return format_table(self.summary)


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """The summary as a Markdown table in the paper's layout (one row per trimap width);
    MESSDdt measured over no flow pixel, and a metric not measured (Grad and Conn without
    image metrics), is ``n/a``; a MESSDdt that is the mean of fewer clips than the row's says
    of how many."""
    head = "| trimap | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " | clips | frames |"
    rule = "|---" * (len(TABLE_COLUMNS) + 3) + "|"
    rows = [head, rule]
    for width, values in summary.items():
        # MESSDdt over no flow pixel (no flow: no plate, or --flow none) was not measured: its 0 is no score.
        unmeasured = values.get("flow_pixel_count", 1) == 0
        cells = ["n/a" if (unmeasured and key.startswith("messddt")) or key not in values
                 else f"{values[key] * scale:.4g}" for key, _, scale in TABLE_COLUMNS]
        if "messddt_clips" in values:  # the mean of fewer clips than the row's (the others had no flow pixel)
            cells = [f"{cell} ({values['messddt_clips']} of {values.get('clips', 0)} clips)"
                     if key.startswith("messddt") and cell != "n/a" else cell
                     for cell, (key, _, _) in zip(cells, TABLE_COLUMNS, strict=True)]
        left_out = f" (+{values['unscored_clips']} not scored)" if values.get("unscored_clips") else ""
        rows.append(f"| {width} | " + " | ".join(cells) + f" | {values.get('clips', 0)}{left_out} | "
                    f"{values.get('frames', 0)} |")
    return "\n".join(rows)


def _say_unscored(clips: dict[str, dict[str, float]], what: str = "", flowed: bool = False) -> None:
    """Warn of clips scored over no pixel: their truth trimaps have no unknown region (a
    matte given as the trimap?), so every metric is n/a and they are left out of the means;
    with ``flowed`` (flow was measured), of clips whose flow is valid on none of those pixels:
    their MESSDdt is n/a, left out of its mean (review: unsaid, while the summary counted them)."""
    for name, values in clips.items():
        if values.get("pixel_count", 1) == 0:
            log.warning("%s: its truth trimaps%s have no unknown pixel on any frame: nothing is scored (n/a), and it "
                        "is left out of the means", name, what)
        elif flowed and values.get("flow_pixel_count", 1) == 0 and values.get("frames", 2) > 1:  # one frame: no pair
            log.warning("%s: its flow%s is valid on no unknown pixel of any frame: its MESSDdt is not measured (n/a), "
                        "and it is left out of the MESSDdt mean", name, what)


# ----- predictions ---------------------------------------------------------------------------------
def prediction_files(folder: Path) -> dict[int, Path]:
    """Map frame index -> file for the alpha files of one clip folder."""
    if not folder.is_dir():
        return {}
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith("_tri.png"):
            continue
        match = _FRAME_FILE.search(path.name)
        if not match:
            continue
        index = int(match.group(1))
        if index in found:
            raise InputError(
                f"two prediction files for frame {index}: {found[index].name} and {path.name}",
                path=folder,
            )
        found[index] = path
    return found


def read_prediction(path: Path, frame: int) -> np.ndarray:
    """A predicted alpha file as float32 ``H x W`` in [0, 1]
    (:func:`tcvom.io.images.alpha_channel`: the channel named A, else grey+alpha or RGBA ->
    A, grey or RGB -> the first, whatever the file type); an EXR whose data window crops its
    display window (a render's bounding box, which may reach past it) on its display window,
    0 around it (review QA: a box crossing the edge was refused as another size)."""
    from tcvom.io.images import alpha_channel, placed_on, read_image

    if path.suffix.lower() == ".png":
        # 8/16-bit PNG: float32(v / max) exactly as the reference reads predictions.
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is not None and np.issubdtype(raw.dtype, np.integer):
            pixels = (raw / float(np.iinfo(raw.dtype).max)).astype(np.float32)
            if pixels.ndim == 3 and pixels.shape[2] in (3, 4):  # OpenCV's BGR(A): R first, as every format
                pixels = pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]
            return alpha_channel(pixels, (), path, frame, purpose="scored")
    pixels, info = read_image(path, frame)
    alpha = alpha_channel(pixels, info.channels, path, frame, purpose="scored")
    return alpha if info.display is None else placed_on(alpha, info.origin, info.display)


# ----- plots (OpenCV only) --------------------------------------------------------------------------
_COLOURS = ((40, 90, 220), (200, 120, 30), (60, 160, 60), (150, 60, 160))


def line_plot(title: str, series: dict[str, Sequence[float]], size: tuple[int, int] = (900, 260)) -> np.ndarray:
    """A simple line plot as a BGR uint8 image: x = frame index, one line per series."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 30, 35
    pw, ph = w - left - right, h - top - bottom
    values = [v for s in series.values() for v in s]
    vmax = max(values) if values and max(values) > 0 else 1.0
    n = max((len(s) for s in series.values()), default=1)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), (0, 0, 0), 1)
    for k in range(5):
        y = top + ph - k * ph // 4
        cv2.line(img, (left - 4, y), (left + pw, y), (225, 225, 225) if k else (0, 0, 0), 1)
        cv2.putText(img, f"{vmax * k / 4:.3g}", (4, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(min(n, 6)):
        i = round(k * (n - 1) / max(min(n, 6) - 1, 1))
        x = left + (round(i * pw / (n - 1)) if n > 1 else 0)
        cv2.putText(img, str(i), (x - 6, top + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for j, (name, s) in enumerate(series.items()):
        colour = _COLOURS[j % len(_COLOURS)]
        pts = [
            (left + (round(i * pw / (n - 1)) if n > 1 else pw // 2), top + ph - round(v / vmax * ph))
            for i, v in enumerate(s)
        ]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts if len(pts) <= 60 else []:
            cv2.circle(img, p, 2, colour, -1)
        cv2.putText(img, name, (w - right - 150, 20 + 16 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    cv2.putText(img, "frame", (left + pw // 2 - 20, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def worst_strip(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], max_width: int = 1600) -> np.ndarray:
    """Stack one row per frame: plate | truth | prediction | |error| (colour map), BGR uint8.

    Each row is ``(label, plate float H x W x 3 RGB, gt float H x W, pred float H x W)``.
    """
    out = []
    for label, plate, gt, pred in rows:
        grey = [np.repeat((np.clip(x, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2) for x in (gt, pred)]
        err = cv2.applyColorMap((np.clip(np.abs(pred - gt), 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        rgb = (np.clip(plate, 0, 1) * 255).astype(np.uint8)[:, :, ::-1]
        row = np.concatenate([rgb, grey[0], grey[1], err], axis=1)
        scale = min(1.0, max_width / row.shape[1])
        if scale < 1.0:
            row = cv2.resize(row, (round(row.shape[1] * scale), round(row.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        row = cv2.copyMakeBorder(row, 22, 2, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(row, label + "   (plate | truth | prediction | error)", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(row)
    width = max(r.shape[1] for r in out)
    return np.concatenate([cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)) for r in out])


def _imwrite(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OutputError("cannot write the image", path=path, hint=FULL_HINT)
    return str(path)


# ----- running a method ---------------------------------------------------------------------------
def _run_method(
    clip: Clip,
    widths: Sequence[str],
    work: Path,
    method: str,
    weights: str | Path | None,
    device: str,
) -> None:
    """Write the clip's plate and trimaps under ``work`` and matte them with ``method``."""
    from tcvom import pipeline

    plate_dir = work / "plates" / clip.name
    plate_dir.mkdir(parents=True, exist_ok=True)
    tri_dirs = {w: work / "trimaps" / w / clip.name for w in widths}
    for d in tri_dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for i in range(len(clip)):
        fr = clip.read(i)
        _imwrite(plate_dir / f"plate.{i:05d}.png", np.round(np.clip(fr.image, 0, 1) * 255).astype(np.uint8)[:, :, ::-1])
        for w in widths:
            _imwrite(tri_dirs[w] / f"trimap.{i:05d}.png", clip.trimap(i, w, fr.alpha_raw))
    for w in widths:
        try:
            pipeline.matte(
                str(plate_dir / "plate.#####.png"),
                str(tri_dirs[w] / "trimap.#####.png"),
                work / "alpha" / w / clip.name,
                method=method,
                weights=weights,
                device=device,
                alpha_format="png16",
                progress="none",
            )
        except InputError as exc:
            if exc.path is None or not Path(exc.path).is_relative_to(tri_dirs[w]):
                raise
            # the trimaps are the dataset's own (its alpha at this width): the clip and width are at fault
            raise InputError(f"clip {clip.name}, {w} trimaps (made from its ground truth): {exc.message}",
                             path=clip.fg_path(exc.frame if exc.frame is not None and 0 <= exc.frame < len(clip) else 0),
                             frame=exc.frame, hint=f"leave the width out (--widths) or the clip (--clips); a "
                             f"{w} band can cover a small subject whole") from exc


# ----- the job ---------------------------------------------------------------------------------------
def evaluate(
    data: str | Path,
    out: str | Path,
    *,
    predictions: str | Path | None = None,
    method: str | None = None,
    weights: str | Path | None = None,
    device: str = "cpu",
    widths: Sequence[str] = ("narrow", "medium", "wide"),
    clips: Sequence[str] | None = None,
    split: str = "val",
    subset: bool = False,
    flow: str = "auto",
    image_metrics: bool = True,
    plots: bool = True,
    worst: int = 3,
    progress: ProgressMode = "bar",
) -> EvalReport:
    """Score predictions (or a method's output) against the dataset at ``data``.

    - ``predictions``: folder laid out as ``<width>/<category>/<clip>/<frame files>``;
      exactly one of ``predictions`` and ``method`` is given.
    - ``method``: ``classical`` / ``tcvom`` / ``auto``, run with :func:`tcvom.pipeline.matte`
      on the composited plate and the dataset trimap of each width (``weights``,
      ``device`` passed on); its mattes go to ``out/work``.
    - ``widths``: trimap widths to evaluate (narrow / medium / wide = kernels 11 / 25 / 41).
    - ``flow`` for MESSDdt: ``png`` (the dataset's flow_png; missing files are an error),
      ``dis`` (OpenCV DIS on the composited frames), ``auto`` (png where present, else
      DIS) or ``none`` (MESSDdt not computed: ``n/a`` in the table, absent from the JSON
      reports and empty in the CSV, as Grad and Conn without ``image_metrics``).
    - ``image_metrics``: also the Gradient and Connectivity errors (slower).
    - ``worst``: how many worst frames (by SSDA) per clip go into the image strips.
    """
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    if (predictions is None) == (method is None):
        raise InputError("give either a predictions folder (--predictions) or a method to run (--method)")
    check_choice(flow, FLOW_MODES, "flow")
    check_flag(image_metrics, "image_metrics")
    check_flag(plots, "plots")
    check_flag(subset, "subset")
    bad = [w for w in widths if w not in TRIMAP_KERNELS]
    if bad or not widths:
        raise InputError(f"trimap widths must be among {', '.join(TRIMAP_KERNELS)}, got {list(widths)}")
    dataset = VideoMatting108(data, split=split, clips=clips, subset=subset)
    if len(dataset) == 0:
        raise InputError("the split lists no clip", path=data)
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {exc}", path=out_dir) from exc

    pred_root = Path(predictions) if predictions is not None else out_dir / "work" / "alpha"
    if predictions is not None:
        if not pred_root.is_dir():
            raise InputError("the predictions folder does not exist", path=pred_root)
        present = [w for w in widths if (pred_root / w).is_dir()]
        if not present:
            raise InputError(
                f"no predictions for the widths {', '.join(widths)}",
                path=pred_root,
                hint="lay predictions out as <predictions>/<width>/<category>/<clip>/<frame>.png",
            )
        widths = present

    total = sum(len(c) for c in dataset)
    frame_rows: list[dict[str, Any]] = []
    per_clip: dict[str, dict[str, dict[str, float]]] = {w: {} for w in widths}
    flow_used = {"png": 0, "dis": 0, "none": 0}
    outputs: dict[str, str] = {}
    with Progress("eval", total, progress) as bar:
        for clip in dataset:
            if method is not None:
                bar.message(f"running {method} on {clip.name} ({len(clip)} frames, {len(widths)} widths)")
                _run_method(clip, widths, out_dir / "work", method, weights, device)
            files = {w: prediction_files(pred_root / w / clip.name) for w in widths}
            for w in widths:
                missing = [i for i in range(len(clip)) if i not in files[w]]
                if missing:
                    raise MissingFrameError(
                        f"no prediction for frame {missing[0]} of clip {clip.name} ({len(missing)} missing)",
                        path=pred_root / w / clip.name,
                        frame=missing[0],
                        hint="name each file after its 0-based frame index, e.g. 00012.png",
                    )
                extra = sorted(set(files[w]) - set(range(len(clip))))
                if extra:  # scored only over the truth's frames: say what was left out
                    log.warning("%s: %d prediction file(s) past the clip's frames 0..%d (%s) are not scored",
                                pred_root / w / clip.name, len(extra), len(clip) - 1,
                                ", ".join(files[w][i].name for i in extra[:3]) + (" ..." if len(extra) > 3 else ""))
            provider = _Flow(clip, flow)
            scorers = {w: ClipScorer(flow=provider, image_metrics=image_metrics) for w in widths}
            size = None
            for i in range(len(clip)):
                fr = clip.read(i)
                size = size or fr.alpha.shape
                if fr.alpha.shape != size:
                    raise FrameSizeError(f"the frame is {fr.alpha.shape[1]}x{fr.alpha.shape[0]}, frame 0 of clip "
                                         f"{clip.name} is {size[1]}x{size[0]}", path=clip.fg_path(i), frame=i)
                provider.images[i] = fr.image
                provider.images.pop(i - 2, None)
                for w in widths:
                    pred = read_prediction(files[w][i], i)
                    if pred.shape != fr.alpha.shape:
                        raise FrameSizeError(
                            f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth {fr.alpha.shape[1]}x{fr.alpha.shape[0]}",
                            path=files[w][i],
                            frame=i,
                        )
                    scorers[w].add(i, pred, fr.alpha, clip.trimap(i, w, fr.alpha_raw))
                bar.advance(frame=i)
            for k, v in provider.sources.items():
                flow_used[k] += v
            for w in widths:
                scores = scorers[w].finish()
                per_clip[w][clip.name] = average_frames(scores)
                frame_rows.extend(_frame_row(w, clip, s) for s in scores)
                if plots:
                    outputs.update(_clip_plots(out_dir / "plots" / w, clip, scores, files[w], worst))
    for w in widths:
        _say_unscored(per_clip[w], f" ({w} trimaps)", any(v for k, v in flow_used.items() if k != "none"))
    summary = {w: average_clips(list(per_clip[w].values())) for w in widths}
    report = EvalReport(summary=summary, clips=per_clip, flow=flow_used, method=method,
                        scored=f"predictions folder {pred_root}" if predictions is not None else None)
    outputs.update(_write_reports(out_dir, report, frame_rows))
    report.outputs = outputs
    return report


#: The sequences of a truth folder: one is never taken for the other.
_TRUTH_NAMES = ("alpha", "trimap")


def _sequence(text: str | Path, default_name: str) -> str:
    """A sequence pattern for ``text``: a pattern as given, or for a folder the
    ``default_name`` sequence inside it when there is one, else its only sequence (never
    the other of a truth folder's alpha and trimap); a folder of several is refused."""
    from tcvom.io.sequence import is_pattern, refuse_movie, sequences_in

    folder = Path(text)
    if not folder.is_dir():
        if not is_pattern(str(text)) and not folder.exists():  # was "a single file without a frame number"
            raise InputError("no such file or folder", path=folder,
                             hint="give a folder holding the sequence, or its pattern (alpha.####.png)")
        return str(text)
    named = folder / f"{default_name}.####"
    found = [ext for ext in (".png", ".exr", ".tif", ".tiff") if any(folder.glob(f"{default_name}.*{ext}"))]
    if len(found) > 1:  # one of them was scored, without a word
        raise InputError(f"the folder holds {default_name} frames of {len(found)} file types ({', '.join(found)})",
                         path=folder, hint=f"name the sequence to score, e.g. {named}{found[0]}")
    if found:  # in the padding the files have (alpha.01001.png was "every frame missing")
        padded = [p for p in sequences_in(folder) if Path(p).name.startswith(f"{default_name}.")
                  and p.endswith(found[0]) and "." not in Path(p).name[len(default_name) + 1:-len(found[0])]]
        if len(padded) > 1:  # one was scored, or none ("every frame missing")
            raise InputError(f"the folder holds {default_name} frames in {len(padded)} paddings "
                             f"({', '.join(Path(p).name for p in padded)})", path=folder,
                             hint=f"name the sequence to score, e.g. {padded[0]}")
        return padded[0] if padded else f"{named}{found[0]}"
    others = [name for name in _TRUTH_NAMES if name != default_name]
    candidates = [p for p in sequences_in(folder) if not any(Path(p).name.startswith(f"{o}.") for o in others)]
    if len(candidates) > 1:  # the first fileseq found was scored, without a word
        shown = ", ".join(Path(p).name for p in candidates[:4]) + (", ..." if len(candidates) > 4 else "")
        raise InputError(f"the folder holds no {default_name}.#### sequence and {len(candidates)} others ({shown})",
                         path=folder, hint=f"name the sequence to score, e.g. {candidates[0]}")
    if candidates:
        log.info("%s: scoring %s, the folder's one sequence", folder, Path(candidates[0]).name)
        return candidates[0]
    for entry in sorted(folder.iterdir()):  # a movie alone: "alpha.1001.png missing" named no file there
        refuse_movie(entry, default_name)
    return str(named) + ".png"  # a folder without a sequence: its files are then reported missing


def _truth_size(gt_seq: Any, numbers: Sequence[int]) -> tuple[int, tuple[int, ...]] | None:
    """(a frame, its size) of the ground truth's size, by its first frames (an odd first
    frame, against the two after it, is named: the alpha of its frame was blamed)."""
    if not numbers:
        return None
    sizes = [(f, read_prediction(gt_seq.path(f), f).shape) for f in numbers[:3]]
    if len(sizes) == 3 and sizes[0][1] != sizes[1][1] == sizes[2][1]:
        (odd, size), (other, other_size) = sizes[0], sizes[1]
        raise FrameSizeError(f"the ground truth is {size[1]}x{size[0]} here, {other_size[1]}x{other_size[0]} at "
                             f"frames {other}-{sizes[2][0]}", path=gt_seq.path(odd), frame=odd,
                             hint="every frame of the ground truth is one size")
    return sizes[0]


def evaluate_sequence(
    alpha: str | Path,
    truth: str | Path,
    out: str | Path | None = None,
    *,
    truth_trimaps: str | Path | None = None,
    plate: str | Path | None = None,
    frames: str | None = None,
    image_metrics: bool = True,
    progress: ProgressMode = "none",
) -> EvalReport:
    """Score one shot's alpha sequence (a folder such as ``out/alpha``, or a pattern) against
    its ground truth: a folder with ``alpha.####.png`` and ``trimap.####.png`` (the
    ``truth/`` folder of ``tcvom example``), or an alpha pattern with ``truth_trimaps``.
    Metrics are over the unknown region of the truth trimaps; MESSDdt uses DIS flow on the
    ``plate`` when one is given (else it is not computed). Every truth frame (or ``frames``)
    must have an alpha; frames that are not consecutive (``1001-1040x2``) are scored without
    the temporal metrics. With ``out``, the reports of :func:`evaluate` are written there
    (one row, ``shot``)."""
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    from tcvom.io.sequence import ImageSequence
    from tcvom.io.sources import open_frames, open_trimaps

    for value, name in ((alpha, "alpha"), (truth, "truth")):
        if value is None:
            raise InputError(f"{name} must be a folder or a sequence pattern, not None")
        check_text(value, name, path=True)
    for value, name in ((truth_trimaps, "truth_trimaps"), (plate, "plate"), (out, "out")):
        check_text(value, name, path=True)
    check_flag(image_metrics, "image_metrics")
    truth_alpha = _sequence(truth, "alpha")
    if truth_trimaps is None:
        if not Path(truth).is_dir():
            raise InputError("give the truth trimaps (--truth-trimaps) or a truth folder holding alpha.#### and "
                             "trimap.####", path=truth)
        truth_trimaps = _sequence(truth, "trimap")
    gt_seq = ImageSequence(truth_alpha, frames, what="ground-truth alpha", holes_hint="score the frames that exist "
                           "with --frames {frames}: dtSSD and MESSDdt, which compare each frame with the next, are then "
                           "not measured")
    numbers = gt_seq.frame_numbers
    consecutive = list(numbers) == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True
    if not consecutive:  # ground truth of every other frame, or a few frames: each is scored alone
        log.warning("frames %s are not consecutive: dtSSD and MESSDdt (which compare each frame with the next) are "
                    "not measured", format_range(numbers))
    pred_seq = ImageSequence(_sequence(alpha, "alpha"), numbers, what="alpha")
    if frames is None:  # every truth frame is scored: say so when the alpha has more
        beyond = sorted(set(ImageSequence(pred_seq.pattern, what="alpha", contiguous=False).frame_numbers)
                        - set(numbers))
        if beyond:
            log.warning(
                "%s: %d alpha frame(s) have no ground truth and are not scored (%s); the score is of frames %s",
                pred_seq.pattern, len(beyond), format_range(beyond), format_range(numbers))
    tris = open_trimaps(str(truth_trimaps), numbers, what="truth trimap")
    images = open_frames(str(plate), numbers) if plate is not None and consecutive else None
    scorer = ClipScorer(image_metrics=image_metrics, temporal=consecutive)
    first = _truth_size(gt_seq, numbers)
    with Progress("eval", len(numbers), progress) as bar:
        for n in numbers:
            gt = read_prediction(gt_seq.path(n), n)
            if first is not None and gt.shape != first[1]:  # an odd truth frame was blamed on the alpha
                raise FrameSizeError(
                    f"the ground truth is {gt.shape[1]}x{gt.shape[0]} here, {first[1][1]}x{first[1][0]} at frame "
                    f"{first[0]}", path=gt_seq.path(n), frame=n, hint="every frame of the ground truth is one size")
            pred = read_prediction(pred_seq.path(n), n)
            if pred.shape != gt.shape:
                raise FrameSizeError(
                    f"the alpha is {pred.shape[1]}x{pred.shape[0]}, the ground truth {gt.shape[1]}x{gt.shape[0]}",
                    path=pred_seq.path(n),
                    frame=n,
                )
            if images is not None and (images.height, images.width) != gt.shape:  # was "flow 240x135" at the first pair
                raise FrameSizeError(
                    f"the plate is {images.width}x{images.height}, the ground truth {gt.shape[1]}x{gt.shape[0]}",
                    path=images.path(n), frame=n, hint="give the plate these alphas were made from (--plate)")
            image = images.read(n) if images is not None else None
            trimap = tris.read(n)
            if trimap.shape != gt.shape:
                raise FrameSizeError(
                    f"the truth trimap is {trimap.shape[1]}x{trimap.shape[0]}, the ground truth {gt.shape[1]}x"
                    f"{gt.shape[0]}", path=tris.path(n), frame=n)
            scorer.add(n, pred, gt, trimap, image)
            bar.advance(frame=n)
    scores = scorer.finish()
    shot = average_clips([average_frames(scores)])
    flow = dict(scorer.flow_sources)
    _say_unscored({str(alpha): shot}, flowed=any(v for k, v in flow.items() if k != "none"))
    report = EvalReport(summary={"shot": shot}, clips={"shot": {str(alpha): shot}}, flow=flow,
                        scored=f"alpha sequence {pred_seq.pattern}")
    if out is not None:
        out_dir = Path(out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder: {exc}", path=out_dir) from exc
        rows = [{"width": "shot", "clip": str(alpha), "name": pred_seq.path(s.frame).name, **s.as_dict()} for s in scores]
        report.outputs = _write_reports(out_dir, report, rows)
    return report


class _Flow:
    """Flow for frame pairs of one clip: flow_png files, or DIS on the composited frames
    (computed once per pair and shared by every width)."""

    def __init__(self, clip: Clip, mode: str) -> None:
        self.clip, self.mode = clip, mode
        self.images: dict[int, np.ndarray] = {}
        self.sources = {"png": 0, "dis": 0, "none": 0}
        self._cache: tuple[int, tuple[np.ndarray, np.ndarray] | None] | None = None

    def __call__(self, t: int, t1: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self._cache is not None and self._cache[0] == t:
            result = self._cache[1]
        else:
            result, source = self._compute(t, t1)
            self.sources[source] += 1
            self._cache = (t, result)
        return result

    def _compute(self, t: int, t1: int) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
        if self.mode == "none":
            return None, "none"
        if self.mode in ("png", "auto"):
            got = self.clip.flow(t)
            if got is not None:
                image = self.images.get(t)
                if image is not None and got[0].shape[:2] != image.shape[:2]:
                    raise FrameSizeError(
                        f"the flow is {got[0].shape[1]}x{got[0].shape[0]}, the frames of clip {self.clip.name} are "
                        f"{image.shape[1]}x{image.shape[0]}",
                        path=self.clip.flow_path(t), frame=t,
                        hint="remake the flow at the frames' size, or use --flow dis to compute it with OpenCV")
                return got, "png"
            if self.mode == "png":
                raise MissingFrameError(
                    "the flow file is missing",
                    path=self.clip.flow_path(t),
                    frame=t,
                    hint="use --flow dis (or auto) to compute flow with OpenCV instead",
                )
        return dis_flow(self.images[t], self.images[t1]), "dis"


def _frame_row(width: str, clip: Clip, score: FrameScore) -> dict[str, Any]:
    return {"width": width, "clip": clip.name, "name": clip.stems[score.frame], **score.as_dict()}


def _clip_plots(
    folder: Path, clip: Clip, scores: list[FrameScore], files: dict[int, Path], worst: int
) -> dict[str, str]:
    stem = clip.name.replace("/", "__")
    written = {}
    curves = np.concatenate(
        [
            line_plot(f"{clip.name}: SSDA per frame", {"SSDA": [s.ssda for s in scores]}),
            line_plot(f"{clip.name}: dtSSD per frame (last frame 0)", {"dtSSD": [s.dtssd for s in scores]}),
        ]
    )
    written[f"curves:{folder.name}:{clip.name}"] = _imwrite(folder / f"{stem}_curves.png", curves)
    if worst > 0:
        order = sorted(scores, key=lambda s: s.ssda, reverse=True)[:worst]
        rows = []
        for s in order:
            fr = clip.read(s.frame)
            rows.append((f"frame {s.frame}  SSDA {s.ssda:.3g}  MSE {s.mse:.3g}", fr.image, fr.alpha, read_prediction(files[s.frame], s.frame)))
        written[f"worst:{folder.name}:{clip.name}"] = _imwrite(folder / f"{stem}_worst.png", worst_strip(rows))
    return written


def _scored_line(report: EvalReport) -> str:
    """summary.md's first words: the method run, or what was scored without one."""
    if report.method is not None:
        return f"method: {report.method}"
    return f"scored: {report.scored or 'a predictions folder'}"


def _write_reports(out: Path, report: EvalReport, rows: list[dict[str, Any]]) -> dict[str, str]:
    fields = ["width", "clip", "frame", "name", *METRIC_NAMES, "pixel_count", "flow_pixel_count"]
    frames_csv = write_csv(out / "frames.csv", fields, rows)  # each report whole or as it was (a full disk)
    clips_json = write_text(out / "clips.json", json.dumps(
        {"method": report.method, "scored": report.scored, "flow": report.flow, "summary": report.summary,
         "clips": report.clips}, indent=1))
    write_text(out / "summary.json", json.dumps(
        {"method": report.method, "scored": report.scored, "flow": report.flow, "summary": report.summary}, indent=1))
    summary_md = out / "summary.md"
    flow_note = ", ".join(f"{k}: {v} pairs" for k, v in report.flow.items() if v) or "no frame pairs"
    write_text(summary_md,
        f"# tcvom eval\n\n{_scored_line(report)}; flow for MESSDdt: {flow_note}\n\n"
        f"{report.table()}\n"
    )
    return {"frames": str(frames_csv), "clips": str(clips_json), "summary": str(summary_md)}


def make_synthetic(
    root: str | Path,
    *,
    clips: int = 3,
    frames: int = 40,
    width: int = 480,
    height: int = 270,
    seed: int = 0,
    progress: ProgressMode = "bar",
) -> list[str]:
    """Write a synthetic benchmark in the VideoMatting108 layout (see
    :func:`tcvom.data.synthetic.write_benchmark`; every second clip has an occluder).
    Returns the clip names."""
    config = ShotConfig(width=width, height=height, frames=frames)
    return write_benchmark(root, clips=clips, config=config, seed=seed, progress=progress)
