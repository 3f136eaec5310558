"""The calls into Nuke: create the TCVOM_Matte Group, and its Compute button.

Compute reads the knobs as values (:class:`tcvom_nuke.matte.NodeSettings`), renders
with a temporary Write node what tcvom cannot read directly (main thread), then runs
``tcvom run`` as a subprocess. In the GUI a background thread polls it under a
``nuke.ProgressTask`` (its Cancel stops the worker) and hands the result to the main
thread with ``nuke.executeInMainThread``; without a GUI (``nuke -t``/``-x``) the same
loop runs synchronously. Errors reach the artist through ``nuke.message``.

The node needs none of this to render: once computed, its internal Read names the
cached alpha EXRs, so ``nuke -x`` and farm machines without tcvom render it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from typing import Any

import nuke

from tcvom_nuke import matte

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))).replace("\\", "/")
NODE_FILE = PLUGIN_DIR + "/nodes/TCVOM_Matte.nk"
ALPHA_READ = "tcvom_alpha"
SETTING_KNOBS = ("keyframes", "method", "backend", "weights", "matting_weights", "base", "device", "precision",
                 "working_space",
                 "trimap_channel", "cache_dir", "frame_range", "executable")

_active: list[MatteRun] = []  # the running computations (a node renamed while it runs is still its node)
_lock = threading.Lock()


def create_matte() -> Any:
    """Menu command: paste the TCVOM_Matte Group (saved into the script as a Group, so
    scripts render without this plugin)."""
    nuke.nodePaste(NODE_FILE)
    return nuke.selectedNode()


def _value(node: Any, name: str, default: Any = "") -> Any:
    knob = node.knob(name)
    return default if knob is None else knob.value()


def read_settings(node: Any) -> matte.NodeSettings:
    """The node's knobs as plain values (never evaluated)."""
    values = {name: str(_value(node, name, getattr(matte.NodeSettings, name))) for name in SETTING_KNOBS}
    settings = matte.NodeSettings(**values)
    settings.check()
    return settings


def read_plate(node: Any) -> matte.PlateInput:
    """What feeds the Plate input (input 0), as values."""
    source = node.input(0)
    if source is None:
        raise matte.HostError("the Plate input is not connected", "connect the plate to the node's Plate input")
    plate = matte.PlateInput(node_class=source.Class(), first=int(source.firstFrame()), last=int(source.lastFrame()))
    if plate.node_class == "Read":
        plate.file = (nuke.filename(source) or "").replace("\\", "/")
        plate.colorspace = str(_value(source, "colorspace", ""))
        plate.raw = bool(_value(source, "raw", False))
        plate.frame_mode = str(_value(source, "frame_mode", ""))
        plate.frame = str(_value(source, "frame", ""))
        plate.disabled = bool(_value(source, "disable", False))
        # first/last stay the Read's output frames (firstFrame/lastFrame), which a frame
        # offset moves away from its first/last knobs (the file numbers).
    return plate


class RenderCancelled(Exception):
    """The artist cancelled Nuke's render of the inputs (its progress window's Cancel)."""


def render(source: Any, pattern: str, frames: Sequence[int], channels: str, what: str) -> None:
    """Render ``frames`` of ``source`` (``what``: the input as the artist knows it) to EXRs
    at ``pattern`` with a temporary Write node (raw: the working space's values, untouched).
    :class:`RenderCancelled` when the artist cancels it; a failed render is a HostError
    naming the input and frames."""
    if not frames:
        return
    os.makedirs(os.path.dirname(pattern), exist_ok=True)
    with nuke.root():
        write = nuke.nodes.Write(file=pattern, file_type="exr", channels=channels, raw=True)
    try:
        write.setInput(0, source)
        for first, last in matte.frame_runs(frames):
            try:
                nuke.execute(write, first, last, 1)
            except RuntimeError as exc:
                if str(exc).strip().lower() == "cancelled":  # what Nuke raises on Cancel
                    raise RenderCancelled from exc
                at = f"frame {first}" if first == last else f"frames {first}-{last}"
                raise matte.HostError(f"rendering {what} at {at} to {os.path.dirname(pattern)} failed: {exc}",
                                      f"look at {what} on those frames in the Viewer (a missing or unreadable file"
                                      f"{', a keyframe not painted yet' if 'Trimap' in what else ''}), and that the "
                                      "cache folder can be written") from exc
    finally:
        nuke.delete(write)


class MatteRun:
    """One press of Compute on one node (constructed in the main thread)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.node_name = node.fullName()  # at the press: it names the node's folder
        if bool(_value(nuke.root(), "proxy", False)):
            # Reads would give the proxy files and Writes render at proxy size: a matte of
            # the wrong size would replace the node's full-resolution one.
            raise matte.HostError("proxy mode is on", "turn proxy mode off to Compute: the matte is computed at full "
                                  "resolution, and the node shows it scaled in proxy mode")
        settings = read_settings(node)
        keyframes = matte.parse_keyframes(settings.keyframes)
        plate = read_plate(node)
        trimap = node.input(1)
        if trimap is None:
            raise matte.HostError("the Trimap input is not connected", "connect the painted trimaps to the Trimap input")
        self.first, self.last = matte.frame_range(settings.frame_range, (plate.first, plate.last))
        matte.check_keyframes(keyframes, self.first, self.last)
        command = matte.hostclient.find_executable(matte.executable_path(settings.executable, nuke.root().name()),
                                                   "the node's tcvom executable knob")
        root = matte.cache_root(settings.cache_dir, nuke.root().name())
        out = matte.node_folder(root, nuke.root().name(), self.node_name)
        holder = matte.folder_shown_by(out, {other.fullName(): _output(other) for other in _matte_nodes()
                                             if other != node}, _output(node))
        if holder is not None:
            raise matte.HostError(f"{holder} shows the matte cached in {out}, the folder of this node's name (a node "
                                  "computed under this name and renamed since): a Compute here would replace that "
                                  "node's matte", "give this node another name (its matte is cached in a folder "
                                  "named after it)")
        staging = matte.new_staging(root)
        try:
            plan = matte.plan_inputs(settings, plate, keyframes, self.first, self.last, staging)
            render(node.input(0), plan.plate, plan.plate_frames, "rgb", "the Plate input")
            for frame, path in sorted(plan.keyframes.items()):
                render(trimap, path, [frame], "rgba", "the Trimap input (a keyframe)")
            self.prepared = matte.prepare_run(settings, plan, command, out, self.first, self.last,
                                                 nuke.root().name())
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
        self.reason = plan.reason
        self.rendered_space = None if plan.direct else plan.colorspace
        self.rendered_plate = None if plan.direct else self.prepared.spec.plate
        self.job: Any = None
        self.thread: threading.Thread | None = None
        self.outcome: matte.Outcome | None = None

    def start_job(self) -> None:
        self.job = matte.hostclient.Job(self.prepared.args, out=self.prepared.out,
                                        setting="the node's tcvom executable knob", fields=matte.KNOB_FLAGS).start()

    def work(self) -> None:
        """Background thread: the worker loop under a ProgressTask, then back to the main thread."""
        task = nuke.ProgressTask("TCVOM Matte: " + self.node_name)
        try:
            self.follow(_TaskProgress(task), task.isCancelled)
        finally:
            del task  # the last reference: Nuke closes the progress window
        nuke.executeInMainThread(finish, args=(self.node_name, self))

    def follow(self, progress: Any, cancelled: Any) -> None:
        """The worker loop until the job ends (the GUI's thread, or terminal mode's caller)."""
        self.outcome = matte.run_job(self.job, self.prepared.frames, progress, cancelled,
                                     keyframes=self.prepared.spec.keyframes, working_space=self.rendered_space,
                                     plate=self.rendered_plate)

    def current_node(self) -> Any:
        """The node, as it is now (renamed since the press, too); None once it is deleted."""
        try:
            name = self.node.fullName()  # Nuke: ValueError for a deleted node's object
        except ValueError:
            return None
        found = nuke.toNode(name)
        return found if found is not None and found == self.node else None


class _TaskProgress:
    """``progress(percent, text)`` for :func:`tcvom_nuke.matte.run_job`, shown on a ProgressTask."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def __call__(self, percent: int, text: str) -> None:
        self.task.setProgress(percent)
        self.task.setMessage(text)


def _set_status(node: Any, text: str) -> None:
    knob = node.knob("status")
    if knob is not None:
        knob.setValue(text)


def apply_alpha(node: Any, run: MatteRun, files: dict[int, str]) -> None:
    """Point the Group's internal Read at the cached alpha (main thread)."""
    values = matte.alpha_read_values(run.prepared.out, run.first, run.last)
    read = node.node(ALPHA_READ)
    if read is None:
        raise matte.HostError(f"the node has no internal Read named {ALPHA_READ}", "create a new TCVOM_Matte node")
    read["file"].fromUserText(values["file_text"])
    for name in ("first", "last", "origfirst", "origlast", "raw", "on_error", "before", "after"):
        read[name].setValue(values[name])
    done = run.outcome.status if run.outcome is not None else ""
    _set_status(node, f"{len(files)} frames ({run.first}-{run.last}) in {run.prepared.out}" + (f" ({done})" if done else ""))
    show_review(node)


def _matte_nodes() -> list[Any]:
    """The script's TCVOM_Matte nodes (Groups holding the internal alpha Read), in groups too."""
    return [n for n in nuke.allNodes("Group", nuke.root(), True) if n.node(ALPHA_READ) is not None]


def _computed_range(node: Any) -> tuple[int, int] | None:
    """The frames (first, last) the node's internal Read holds: the last run's range."""
    read = node.node(ALPHA_READ)
    if read is None or not str(read["file"].value()).strip():
        return None
    return int(read["first"].value()), int(read["last"].value())


def _output(node: Any) -> str | None:
    read = node.node(ALPHA_READ)
    return matte.output_of(str(read["file"].value())) if read is not None else None


def show_review(node: Any) -> None:
    """The last run's review on the node's ``suggested`` and ``doubtful`` knobs (nodes made
    before these knobs existed are left as they are)."""
    for name, text in matte.review_values(_output(node), _computed_range(node)).items():
        knob = node.knob(name)
        if knob is not None:
            knob.setValue(text)


def _review_button(node: Any, action: str) -> int | None:
    node = node if node is not None else nuke.thisNode()
    try:
        keyframes = matte.parse_keyframes(str(_value(node, "keyframes"))) if str(_value(node, "keyframes")).strip() else []
        frame, text = matte.review_target(_output(node), int(nuke.frame()), action, keyframes, _computed_range(node))
    except matte.HostError as exc:
        nuke.message(matte.error_text(exc))
        return None
    nuke.frame(frame)
    _set_status(node, text)
    return frame


def jump(node: Any = None, step: int = 1) -> int | None:
    """The doubtful-frame buttons: move the viewer to the next (``step`` 1) or previous
    (``step`` -1) frame the last run's review marks as doubtful; returns it."""
    return _review_button(node, "next" if step > 0 else "previous")


def goto_suggested(node: Any = None) -> int | None:
    """Move the viewer to the frame the review suggests keying next (paint its trimap in
    the Trimap input there, then *add keyframe here* and Compute again)."""
    return _review_button(node, "suggested")


def add_keyframe(node: Any = None) -> int:
    """Add the viewer's frame to the node's keyframes knob; returns it."""
    node = node if node is not None else nuke.thisNode()
    frame = int(nuke.frame())
    try:
        node["keyframes"].setValue(matte.with_keyframe(str(node["keyframes"].value()), frame))
    except matte.HostError as exc:
        nuke.message(matte.error_text(exc))
        return frame
    _set_status(node, f"keyframe {frame} added: paint its trimap in the Trimap input, then Compute")
    return frame


def finish(node_name: str, run: MatteRun) -> None:
    """Main thread: apply the outcome of a background run, or tell the artist why not."""
    with _lock:
        if run in _active:
            _active.remove(run)
    node = run.current_node()
    outcome = run.outcome
    if outcome is None:
        return
    if node is None:
        nuke.message(f"TCVOM_Matte: the node {node_name} was deleted while its matte was computed")
        return
    if outcome.state == "done":
        try:
            apply_alpha(node, run, outcome.files)
        except Exception as exc:
            _set_status(node, str(exc))
            nuke.message(matte.error_text(exc))
        return
    _set_status(node, "; ".join(part for part in (outcome.status, _keep_shown(node, run)) if part))
    try:  # a run that wrote frames before it stopped removed the review of the run before
        show_review(node)
    except matte.HostError as exc:  # a review that cannot be read: the buttons say so when pressed
        _set_status(node, f"{outcome.status}; {exc}")
    if outcome.state == "failed" and outcome.error is not None:
        nuke.message(matte.error_text(outcome.error))


def _keep_shown(node: Any, run: MatteRun) -> str:
    """After a run that stopped: the internal Read narrowed to the frames still on disk
    (:func:`tcvom_nuke.matte.shown_after_stop`); what to say of it."""
    shown = _computed_range(node)
    if shown is None or _output(node) != run.prepared.out:
        return ""
    kept, said = matte.shown_after_stop(run.prepared.out, shown, (run.first, run.last))
    read = node.node(ALPHA_READ)
    if kept != shown:
        for name, value in (("first", kept[0]), ("last", kept[1]), ("origfirst", kept[0]), ("origlast", kept[1])):
            read[name].setValue(value)
    return said


def compute(node: Any = None) -> MatteRun | None:
    """The Compute button (``nuke.thisNode()`` when ``node`` is None).

    Returns the run (its ``thread`` is the background worker in the GUI), or None when
    nothing was started because of an error already shown with ``nuke.message``.
    """
    node = node if node is not None else nuke.thisNode()
    gui = bool(nuke.env.get("gui"))
    name = node.fullName()
    with _lock:
        if any(other.current_node() == node for other in _active):
            nuke.message(f"TCVOM_Matte: {name} is already computing (cancel it in its progress window)")
            return None
        if any(other.node_name == name for other in _active):  # its folder is named after the press's name
            nuke.message(f"TCVOM_Matte: the node that was named {name} (renamed since) is still computing into "
                         "the folder of that name: wait for it, cancel it, or give this node another name")
            return None
    try:
        run = MatteRun(node)
        _set_status(node, f"computing {run.first}-{run.last}... ({run.reason})")
        run.start_job()
    except RenderCancelled:  # the artist's own choice: no error to show
        _set_status(node, "cancelled while rendering the inputs: nothing was computed, the matte is as it was")
        return None
    except Exception as exc:
        _set_status(node, str(exc))
        nuke.message(matte.error_text(exc))
        if not gui:
            raise RuntimeError(matte.error_text(exc)) from exc
        return None
    if not gui:  # nuke -t / -x: no event loop, run synchronously
        run.follow(_print_progress, lambda: False)
        finish(name, run)
        if run.outcome.state != "done":
            raise RuntimeError(run.outcome.status)
        return run
    with _lock:
        _active.append(run)
    run.thread = threading.Thread(target=run.work, name="tcvom-matte", daemon=True)
    run.thread.start()
    return run


_last_printed = [""]


def _print_progress(percent: int, text: str) -> None:
    if text != _last_printed[0]:  # a line per change, not per poll
        _last_printed[0] = text
        print(f"TCVOM_Matte: {text}", flush=True)


def running() -> list[str]:
    """Names of the nodes being computed now."""
    with _lock:
        return sorted(node.fullName() for node in (run.current_node() for run in _active) if node is not None)
