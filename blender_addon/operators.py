"""Operators: pull the matte (tcvom out of process), add and remove keyframes.

``tcvom.pull_matte`` runs tcvom as a subprocess through the vendored ``hostclient``:
invoked from the UI it is modal (a timer polls the worker; progress in the status bar;
Esc cancels and the worker stops); executed from Python or in background mode it runs
the same :class:`MatteRun` synchronously.

One output folder per shot and node, ``//tcvom_cache/<blend>/<scene>/<node>/`` beside
the .blend: every press runs ``tcvom run`` into it, and tcvom, which records what each
frame was made from (keyframes, plate frames, the method and weights ``auto`` resolves
to, settings), recomputes only what changed since the last press and reuses the rest.
The add-on keeps no cache key of its own, so it never shows a stale matte.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy

from . import inputs, nodes, prefs, review
from .hostclient import (
    PAST_CUT,
    PLATE_ALPHA,
    HostError,
    Job,
    RunSpec,
    build_run_args,
    check_cache_folder,
    collect_alpha,
    find_executable,
    install_folder,
    read_review,
    result_summary,
    review_token,
    shot_folder,
    warnings_summary,
)

CACHE_DIR = "//tcvom_cache"
#: Where the artist sets the tcvom to run, as errors name it.
TCVOM_SETTING = "the add-on preferences (Preferences > Add-ons > tcvom Matte > tcvom)"
_LEGACY_KEY = 16  # earlier versions kept one folder per input hash: //tcvom_cache/<16 hex digits>

_active: MatteRun | None = None  # one matte at a time per Blender session


def _abs_or_none(path: str) -> str | None:
    return bpy.path.abspath(path) if path else None


class MatteRun:
    """One press of the button: inputs exported, the cache folder keyed, the worker job.

    Construction prepares everything (and raises HostError with the fix on bad input);
    :meth:`start`, :meth:`tick`/:meth:`wait`, :meth:`cancel` drive tcvom; :meth:`finish`
    builds or updates the compositor node.
    """

    def __init__(self, context: bpy.types.Context) -> None:
        if not bpy.data.filepath:
            raise HostError("the .blend file is not saved", "save it first: the matte is cached beside it")
        scene = context.scene
        settings = scene.tcvom
        preferences = prefs.preferences(context)
        self.command = find_executable((preferences.tcvom_path if preferences else "") or None, TCVOM_SETTING)
        self.node_name = settings.node_name or "tcvom Matte"
        self.plate = inputs.plate_info(settings)
        cache_root = os.path.normpath(bpy.path.abspath(CACHE_DIR))
        check_cache_folder(cache_root, "save the .blend in a folder whose path holds no # @ $F %d: the matte is "
                                       "cached beside it")
        blend = os.path.splitext(bpy.path.basename(bpy.data.filepath))[0]
        self.out = shot_folder(cache_root, blend, scene.name, self.node_name)
        try:
            os.makedirs(self.out, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".staging-", dir=self.out)
        except OSError as exc:
            raise HostError(f"cannot write the matte cache {self.out} ({exc.strerror})",
                            "save the .blend in a folder you can write to: the matte is cached beside it") from exc
        try:
            self.unsaved = inputs.unsaved_keyframe_images(settings)  # said when the pull ends
            keys = inputs.export_keyframes(settings, self.plate, staging)
            spec = RunSpec(
                plate=self.plate.path,
                out=self.out,
                keyframes=keys,
                method=settings.method,
                weights=_abs_or_none(settings.weights),
                matting_weights=_abs_or_none(settings.matting_weights),
                base=settings.base if not settings.matting_weights else None,
                device=settings.device.strip() or "cpu",
                precision=settings.precision,
                input_colorspace=inputs.plate_colourspace(settings, self.plate),
            )
            spec.check()
            # Unchanged keyframe files keep their bytes and time; a removed keyframe's goes.
            installed = install_folder({os.path.basename(p): p for p in keys.values()},
                                       os.path.join(self.out, "keyframes"))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        spec.keyframes = {f: installed[os.path.basename(p)] for f, p in keys.items()}
        self.spec = spec
        # What tcvom's errors call a keyframe (its copy here, a plate frame), as the artist knows it.
        self.keyframe_names = {item.frame + self.plate.shift: inputs.keyframe_name(item) for item in settings.keyframes}
        self.job: Job | None = None
        self.note = ""  # what the artist must know about where the node went (finish)
        self.past_cut = ""  # frames past a cut from every keyframe, in scene frames (finish)

    def start(self) -> None:
        self.job = Job(build_run_args(self.command, self.spec), out=self.out, setting=TCVOM_SETTING).start()

    def tick(self) -> str:
        """Take the worker's news (never blocks); returns the job state."""
        assert self.job is not None
        self.job.poll()
        return self.job.state

    def wait(self) -> None:
        assert self.job is not None
        self.job.wait()
        self.raise_if_failed()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def raise_if_failed(self) -> None:
        assert self.job is not None
        if self.job.state == "failed" and self.job.error is not None:
            error = self.job.error
            raise HostError(self.named(error.message), self.colourspace_fix(error.message) or error.fix,
                            error.exit_code)
        if self.job.state != "done":
            raise HostError(f"tcvom did not finish ({self.job.state})", "run the matte again")

    def colourspace_fix(self, message: str) -> str:
        """The fix for a colour space tcvom's config does not know, when it is the one the
        add-on passed (tcvom's own advice is a command line's, which the job leaves out)."""
        space = self.spec.input_colorspace
        if not space or f"colour space {space!r}" not in message:
            return ""
        return inputs.COLOURSPACE_FIX

    def plate_alpha_fix(self) -> str | None:
        """What the artist reads for tcvom's warning of a plate whose alpha is below 1
        (``PLATE_ALPHA``; its plate frame number left out): Blender premultiplies a PNG's (a
        straight-alpha file's) colour by it when it loads it, so the composite under the matte
        is darker, black where the alpha is 0 (Blender QA). None where the plate image keeps
        its colour as stored (Alpha: Channel Packed or None): the warning is then left out."""
        said = ("the plate's alpha channel is below 1 and Blender multiplies its colour by it when it loads it: the "
                "composite under the matte is darker there, black where the alpha is 0 (tcvom mattes the colour as "
                "stored)")
        block = self.plate.datablock
        if isinstance(block, bpy.types.Image):
            if block.alpha_mode in ("CHANNEL_PACKED", "NONE"):
                return None
            return (f"{said}; set the Alpha of image '{block.name}' to Channel Packed (Image Editor sidebar, "
                    "Image tab)")
        return f"{said}; a Movie Clip has no such setting: open the plate as an Image, or write it without alpha"

    def named(self, message: str) -> str:
        """``message`` with the keyframes' exported files named as the artist knows them
        (``the keyframe at scene frame 1006 (image 'key')``)."""
        for frame, path in self.spec.keyframes.items():
            name = self.keyframe_names.get(frame)
            if name:
                message = message.replace(f"{path}: frame {frame}", name).replace(path, name)
        return message

    def finish(self, context: bpy.types.Context) -> bpy.types.Node:
        """Build or update the compositor node reading the cached alpha."""
        files = collect_alpha(self.out, self.plate.frames)
        first = self.plate.frames[0]
        # One group and image per scene and node: another scene's node of the same name
        # (the default) reads its own plate and matte.
        own = f"{self.node_name} [{context.scene.name}]"
        alpha = nodes.alpha_image(f"{own} alpha", bpy.path.relpath(files[first]))
        group = nodes.build_group(
            f"{own} Group",
            self.plate.datablock,
            alpha,
            alpha_first=first,
            alpha_count=self.plate.frames[-1] - first + 1,
            shift=self.plate.shift,
            plate_image_frames=self.plate.image_frames,
        )
        node, placed = nodes.place_group_node(context.scene, group, self.node_name)
        self.note = "; ".join(part for part in (placed, self.unsaved) if part)
        settings = context.scene.tcvom
        _remove_legacy_folder(settings.cache_key, self.out)
        settings.cache_key = ""
        settings.output = bpy.path.relpath(self.out)
        last = read_review(self.out)
        review.show(context.scene, last, self.plate.shift)
        settings.review_token = review_token(self.out)
        self.past_cut = review.past_cut(last, self.plate.shift)
        return node


def _remove_legacy_folder(key: str, out: str) -> None:
    """Delete this node's folder of the earlier one-folder-per-input-hash cache (its key
    was kept in ``settings.cache_key``): the node reads ``out`` from now on."""
    if len(key) != _LEGACY_KEY or any(c not in "0123456789abcdef" for c in key):
        return
    legacy = os.path.join(bpy.path.abspath(CACHE_DIR), key)
    if os.path.isdir(legacy) and os.path.abspath(legacy) != os.path.abspath(out):
        shutil.rmtree(legacy, ignore_errors=True)


def _status(context: bpy.types.Context, area: bpy.types.Area | None, text: str | None) -> None:
    """Progress in the status bar and the header of the area the button was pressed in."""
    if context.workspace is not None:
        context.workspace.status_text_set(text)
    if area is not None:
        area.header_text_set(text)


class TCVOM_OT_pull_matte(bpy.types.Operator):
    """Compute a temporally coherent alpha matte with tcvom and show it in the compositor"""

    bl_idname = "tcvom.pull_matte"
    bl_label = "Pull Matte"
    # Undoable: Ctrl-Z takes the node (and the Viewer it may feed) back out of the compositor.
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    _run: MatteRun | None = None
    _timer = None
    _area = None

    def _done_report(self, context: bpy.types.Context, run: MatteRun) -> None:
        assert run.job is not None
        # What the artist must read first: warnings, then where the node went, the counts, the
        # cache folder last (the sidebar wraps it, the status bar cuts it).
        # tcvom names the frames past a cut as plate frames: the review's, in scene frames, instead
        fix = run.plate_alpha_fix()  # Blender's own words for a plate alpha below 1 (None: the warning is left out)
        said = [fix if PLATE_ALPHA in w else run.named(w) for w in run.job.warnings
                if not (run.past_cut and PAST_CUT in w) and not (PLATE_ALPHA in w and fix is None)]
        warned = warnings_summary([run.past_cut, *said] if run.past_cut else said)
        text = "; ".join(part for part in (warned, run.note) if part)  # an empty keyframe, NaN pixels...
        done = result_summary(run.job.result)
        text += ("; " if text else "") + f"tcvom matte, {len(run.plate.frames)} frames" + (f" ({done})" if done else "")
        text += f" in {bpy.path.relpath(run.out)}"
        context.scene.tcvom.status = text
        self.report({"WARNING"} if run.note or warned else {"INFO"}, text)

    def _failed(self, context: bpy.types.Context, exc: HostError, run: MatteRun | None = None) -> None:
        stale = run.job.stale_note(run.plate.shift) if run is not None and run.job is not None else ""
        context.scene.tcvom.status = "; ".join(part for part in (str(exc), stale) if part)  # the node shows them
        review.forget_if_gone(context)
        self.report({"ERROR"}, str(exc))

    def execute(self, context: bpy.types.Context) -> set[str]:
        global _active
        if _active is not None:
            self.report({"ERROR"}, "a tcvom matte is already being computed (press Esc to cancel it)")
            return {"CANCELLED"}
        try:
            run = MatteRun(context)
            _active = run
            run.start()
            run.wait()
            run.finish(context)
        except HostError as exc:
            self._failed(context, exc, _active)
            return {"CANCELLED"}
        finally:
            _active = None
        self._done_report(context, run)
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        global _active
        if bpy.app.background or context.window is None:
            return self.execute(context)  # no event loop: run synchronously
        if _active is not None:
            self.report({"ERROR"}, "a tcvom matte is already being computed (press Esc to cancel it)")
            return {"CANCELLED"}
        try:
            run = MatteRun(context)
            run.start()
        except HostError as exc:
            self._failed(context, exc)
            return {"CANCELLED"}
        _active = self._run = run
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        self._area = context.area
        _status(context, self._area, "tcvom: starting... (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def _end(self, context: bpy.types.Context) -> None:
        global _active
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        _status(context, self._area, None)
        _active = None

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal operator itself (a file opened or a new one, quitting):
        the worker is stopped, else it ran on alone and every later press said a matte
        was already being computed."""
        if self._run is not None:
            self._run.cancel()
        self._end(context)

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        run = self._run
        assert run is not None and run.job is not None
        if event.type == "ESC":
            run.cancel()
            self._end(context)
            stale = run.job.stale_note(run.plate.shift)  # the node shows them as the run before left them (scene frames)
            context.scene.tcvom.status = "; ".join(
                part for part in ("cancelled: finished frames stay cached, the next run resumes", stale) if part)
            review.forget_if_gone(context)
            self.report({"WARNING"}, "tcvom matte cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = run.tick()
        if state == "running":
            context.window_manager.progress_update(int(run.job.fraction * 100))
            _status(context, self._area, run.job.status_text() + " (Esc to cancel)")
            return {"PASS_THROUGH"}
        self._end(context)
        try:
            run.raise_if_failed()
            run.finish(context)
        except HostError as exc:
            self._failed(context, exc, run)
            return {"CANCELLED"}
        self._done_report(context, run)
        return {"FINISHED"}


class TCVOM_OT_keyframe_add(bpy.types.Operator):
    """Add a keyframe trimap on the current frame (an image of the plate's size to paint,
    starting from the last run's propagated trimap of that frame when there is one)"""

    bl_idname = "tcvom.keyframe_add"
    bl_label = "Add Keyframe"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            item, note = review.add_keyframe(context, context.scene.frame_current)
        except HostError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        review.keyed_since(context)
        review.show_image(context, item.image)
        self.report({"INFO"}, note)
        return {"FINISHED"}


class TCVOM_OT_keyframe_remove(bpy.types.Operator):
    """Remove the selected keyframe"""

    bl_idname = "tcvom.keyframe_remove"
    bl_label = "Remove Keyframe"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.tcvom
        if 0 <= settings.keyframe_index < len(settings.keyframes):
            settings.keyframes.remove(settings.keyframe_index)
            settings.keyframe_index = max(0, settings.keyframe_index - 1)
            review.keyed_since(context)
        return {"FINISHED"}


classes = (TCVOM_OT_pull_matte, TCVOM_OT_keyframe_add, TCVOM_OT_keyframe_remove)
