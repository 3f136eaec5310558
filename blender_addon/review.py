"""The artist's loop: jump to the doubtful frames of the last run, key a frame there.

Every ``tcvom run`` writes ``review/review.json`` in its output folder: a doubt score per
frame, the doubtful frames and the frames to key next, ranked (read by
``hostclient.read_review``). Its frames are plate frames; the artist works in scene
frames (plate frame = scene frame + ``PlateInfo.shift``). The panel's review line and the
doubt markers are written in the scene frames of the shift they were made with
(``settings.review_shift``): a plate moved in time since makes them name other frames,
which the panel says (:func:`moved`) until the next pull, or a jump or Key Suggested,
writes them again.
"""

# No `from __future__ import annotations`: Blender registers properties from evaluated annotations.
import os
from collections.abc import Iterable

import bpy
from bpy.props import EnumProperty

from . import inputs
from .hostclient import HostError, Review, read_review, review_path, review_token, sequence_files

_SHOWN = 5  # suggested frames listed in the panel
MARKER = "tcvom doubt"  # the names of our timeline markers start with this; the artist's are never touched


def past_cut(review: Review | None, shift: int) -> str:
    """The run's warning about frames past a cut from every keyframe, in scene frames
    (tcvom's names plate frames), or ""."""
    if review is None or not review.past_cut:
        return ""
    ranges = [inputs.frame_span(a - shift, b - shift) for a, b in review.past_cut]
    one = len(ranges) == 1 and review.past_cut[0][0] == review.past_cut[0][1]
    where = ranges[0] if len(ranges) == 1 else "each of " + ", ".join(ranges)
    return (f"scene frame{'' if one else 's'} {' and '.join(ranges)} {'lies' if one else 'lie'} past a cut from every "
            f"keyframe: {'its trimap is' if one else 'their trimaps are'} carried over from another picture. "
            f"Paint a keyframe in {where}")


def summary(review: Review | None, shift: int, keyed: Iterable[int] = ()) -> str:
    """One line for the panel: how many frames are doubtful and which to key next (not the
    run's keyframes, nor ``keyed``: the scene frames keyed since, as Key Suggested Frame
    leaves them out)."""
    if review is None:
        return ""
    count = len(review.doubtful)
    text = f"review: {count or 'no'} doubtful frame{'' if count == 1 else 's'}"
    if review.estimated:  # the run's warning only counted them
        text += f" (doubt only guessed for scene frames {inputs.frame_ranges(f - shift for f in review.estimated)})"
    if review.out_of_date:  # a pull of part of the range after an edit: their doubt is of the old matte
        text += (f"; out of date (older than their inputs; pull the whole range): scene frames "
                 f"{inputs.frame_ranges(f - shift for f in review.out_of_date)}")
    if review.not_reviewed or review.not_matted:
        unmatted = sorted({*review.not_reviewed, *review.not_matted})
        text += f"; not matted yet: scene frames {inputs.frame_ranges(f - shift for f in unmatted)}"
    taken = set(review.keyframes) | {f + shift for f in keyed}
    keys = [str(f - shift) for f in review.suggested if f not in taken][:_SHOWN]
    return text + (f"; key next: {', '.join(keys)}" if keys else "")


def mark_doubtful(scene: bpy.types.Scene, review: Review | None, shift: int) -> int:
    """Timeline markers on the doubtful frames (``tcvom doubt 0.62``), replacing those of
    the previous run; returns how many were placed."""
    markers = scene.timeline_markers
    for marker in [m for m in markers if m.name.startswith(MARKER)]:
        markers.remove(marker)
    if review is None:
        return 0
    for frame in review.doubtful:
        markers.new(f"{MARKER} {review.doubt.get(frame, 0.0):.2f}", frame=frame - shift)
    return len(review.doubtful)


def show(scene: bpy.types.Scene, review: Review | None, shift: int) -> None:
    """The review line and the doubt markers of ``review``, in the scene frames of ``shift``."""
    settings = scene.tcvom
    settings.review = summary(review, shift, [item.frame for item in settings.keyframes])
    settings.review_shift, settings.review_shift_known = shift, True
    mark_doubtful(scene, review, shift)


def keyed_since(context: bpy.types.Context) -> None:
    """The review line again after a keyframe was added or removed: its "key next" leaves
    out the frames keyed now (it kept listing the frames Key Suggested Frame had just keyed,
    while the button went on to others). Only where the line is this pull's, in the shift
    it was written with."""
    settings = context.scene.tcvom
    if not settings.review or not settings.output or other_run(settings) or cache_gone(settings) \
            or moved(settings):
        return
    try:
        last = read_review(bpy.path.abspath(settings.output))
    except HostError:
        return
    if last is not None:
        settings.review = summary(last, settings.review_shift, [item.frame for item in settings.keyframes])


def moved(settings: bpy.types.PropertyGroup) -> bool:
    """Whether the plate was moved in time since the review line and the doubt markers were
    written (they name other scene frames now). Reads no file: the panel asks at every draw."""
    if not settings.review or not settings.review_shift_known:
        return False
    shift = inputs.frame_shift(settings)
    return shift is not None and shift != settings.review_shift


#: The last token read per review file, by its size and time: the panel asks at every draw.
_TOKENS: dict[str, tuple[tuple[int, int, int], str]] = {}


def other_run(settings: bpy.types.PropertyGroup) -> bool:
    """Whether the matte in the output folder is of another run than the pull these
    settings record (undo restores the settings, not the files a later pull wrote; another
    Blender session may have pulled into the folder): the review there has another token,
    or none. False for settings without one (a .blend of an earlier add-on)."""
    if not settings.output or not settings.review_token:
        return False
    out = bpy.path.abspath(settings.output)
    path = review_path(out)
    try:
        stat = os.stat(path)
        state = (stat.st_ino, stat.st_size, stat.st_mtime_ns)  # a review is replaced by renaming: a new inode
    except OSError:
        return True  # the recorded pull's review is gone: a later run, which wrote frames, removed it
    known = _TOKENS.get(path)
    if known is None or known[0] != state:
        known = (state, review_token(out))
        _TOKENS[path] = known
    return known[1] != settings.review_token


def cache_gone(settings: bpy.types.PropertyGroup) -> bool:
    """Whether the matte a pull made is gone from disk: the .blend was copied or opened
    without its ``tcvom_cache`` folder (or it was deleted), so the node reads no files and
    the compositor shows an empty matte. Before, the panel blamed undo or another session."""
    if not settings.output or not settings.review_token:
        return False
    return not os.path.isdir(os.path.join(bpy.path.abspath(settings.output), "alpha"))


def cache_gone_text(settings: bpy.types.PropertyGroup) -> str:
    return (f"the matte of the last pull is gone from its folder {settings.output} (the .blend copied or opened "
            "without its tcvom_cache folder?): the compositor shows no matte. Copy the tcvom_cache folder beside "
            "the .blend, or Pull Matte again")


OTHER_RUN = ("the matte in the output folder is not this scene's last pull (a pull undone since, or another "
             "session's): the compositor shows that run's matte. Pull Matte again to match these settings")


def forget_if_gone(context: bpy.types.Context) -> None:
    """After a pull that failed or was cancelled: a run that wrote frames removed the review
    of the run before (it describes alphas that are no longer there), so the panel's review
    line and our timeline markers go too. A review still there (the run stopped before it
    wrote anything) still describes the matte the node reads, and stays."""
    settings = context.scene.tcvom
    if not settings.output:
        return
    try:
        gone = read_review(bpy.path.abspath(settings.output)) is None
    except HostError:
        gone = True  # not a review this add-on reads: nothing to show or jump to
    if gone:
        settings.review = settings.review_token = ""  # the status says what the stopped run left
        mark_doubtful(context.scene, None, 0)


def last_review(context: bpy.types.Context) -> tuple[Review, inputs.PlateInfo]:
    """The review of the last pulled matte and the plate (HostError with the fix if none).
    The review line and doubt markers are written again when the plate has moved in time
    since they were (:func:`moved`)."""
    settings = context.scene.tcvom
    if not settings.output:
        raise HostError("no matte has been pulled yet", "press Pull Matte first")
    if cache_gone(settings):
        raise HostError(cache_gone_text(settings).split(": the compositor")[0], "press Pull Matte again")
    review = read_review(bpy.path.abspath(settings.output))
    if review is None:
        raise HostError(f"the last run left no review in {settings.output}", "press Pull Matte again")
    if other_run(settings):
        raise HostError(OTHER_RUN.split(": the compositor")[0], "press Pull Matte again")
    plate = inputs.plate_info(settings)
    if not same_plate(review, plate):
        raise HostError(f"the last pull matted another plate ({review.plate}) than the one picked now "
                        f"({plate.path}): its review names that plate's frames", "press Pull Matte again")
    if moved(settings):
        show(context.scene, review, plate.shift)
    return review, plate


def same_plate(review: Review, plate: inputs.PlateInfo) -> bool:
    """Whether ``review`` is of the plate picked now. Another path is the same plate only
    where the files it names are gone and the plate's folder and file names are the same: a
    project moved, or mounted elsewhere on another machine (.blend, plates and cache
    together), keeps its review. A review that does not name its plate is taken as it is."""
    if not review.plate:
        return True

    def spelled(path: str, parts: int = 0) -> str:
        names = os.path.normcase(os.path.normpath(path)).replace("\\", "/").split("/")
        return "/".join(names[-parts:])

    if spelled(review.plate) == spelled(plate.path):
        return True
    # moved: the files recorded are gone, and the plate's folder and name are the same (a new
    # version of the plate in another folder, the old one archived, is another plate)
    return not sequence_files(review.plate) and spelled(review.plate, 2) == spelled(plate.path, 2)


def _frame_text(review: Review, frame: int, shift: int) -> str:
    doubt = review.doubt.get(frame)
    if doubt is None:
        return f"frame {frame - shift}"
    return (f"frame {frame - shift}: doubt {doubt:.3g} (trimap {review.trimap_doubt.get(frame, 0.0):.3g}, "
            f"matte {review.matte_doubt.get(frame, 0.0):.3g})")


def add_keyframe(context: bpy.types.Context, scene_frame: int) -> tuple[bpy.types.PropertyGroup, str]:
    """A keyframe on ``scene_frame``, made the active one, and what to tell the artist.

    A keyframe already there is selected, not doubled. A new one gets an image of the
    plate's size to paint: the trimap the last run propagated to that frame when there is
    one (the artist corrects it instead of painting from nothing), else black, also when
    that trimap no longer fits the plate or came across a cut from another picture (the
    note says why).
    """
    settings = context.scene.tcvom
    for index, item in enumerate(settings.keyframes):
        if item.frame == scene_frame:
            settings.keyframe_index = index
            return item, f"frame {scene_frame} already has a keyframe: selected it"
    try:
        plate = inputs.plate_info(settings)
    except HostError:
        item = _new_keyframe(settings, scene_frame)
        return item, f"keyframe added on frame {scene_frame}; pick the plate, then its trimap image"
    missing = inputs.missing_file(plate, scene_frame + plate.shift)
    if missing is not None:  # a keyframe the pull would refuse
        raise HostError(f"scene frame {scene_frame} shows plate frame {scene_frame + plate.shift}, which is missing "
                        f"from the plate's files ({plate.path})",
                        f"go to a frame whose file is there to add a keyframe, or render or copy the missing file "
                        f"{missing}")
    if scene_frame + plate.shift not in set(plate.frames):
        first, last = plate.frames[0] - plate.shift, plate.frames[-1] - plate.shift
        raise HostError(f"scene frame {scene_frame} is outside the plate (scene frames "
                        f"{inputs.frame_span(first, last)})", "go to a frame the plate shows to add a keyframe there")
    start = None
    stale = ""
    if settings.output:
        out = bpy.path.abspath(settings.output)
        frame = scene_frame + plate.shift
        try:
            last = read_review(out)
        except HostError:  # a broken review: the propagated trimap still helps
            last = None
        if last is not None and not same_plate(last, plate):
            stale = " (the last pull was of another plate, so it starts black)"
        elif last is not None and any(a <= frame <= b for a, b in last.past_cut):
            stale = " (its propagated trimap came from another picture, across a cut, so it starts black)"
        else:
            start = inputs.propagated_trimap(out, frame)
    name = f"trimap {scene_frame}"
    try:
        image = inputs.keyframe_image(name, plate.size, start)
    except HostError as exc:  # the last run's trimap no longer fits (the plate changed)
        image, start, stale = inputs.keyframe_image(name, plate.size), None, f" ({exc.message}, so it starts black)"
    item = _new_keyframe(settings, scene_frame)
    item.image = image
    item.plate_frame, item.plate_frame_known = scene_frame + plate.shift, True  # the picture it is painted on
    if start is not None:
        return item, f"keyframe added on frame {scene_frame}, starting from the propagated trimap: correct it"
    return item, f"keyframe added on frame {scene_frame}: paint its trimap{stale}"


def _new_keyframe(settings: bpy.types.PropertyGroup, scene_frame: int) -> bpy.types.PropertyGroup:
    item = settings.keyframes.add()
    item.frame = scene_frame
    settings.keyframe_index = len(settings.keyframes) - 1
    return item


def show_image(context: bpy.types.Context, image: bpy.types.Image | None) -> None:
    """Show ``image`` in the screen's Image editors (for painting), if there are any."""
    if image is None or context.screen is None:
        return
    for area in context.screen.areas:
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image


class TCVOM_OT_doubtful_jump(bpy.types.Operator):
    """Go to the next (or previous) frame the last run's review marks as doubtful"""

    bl_idname = "tcvom.doubtful_jump"
    bl_label = "Jump to Doubtful Frame"

    direction: EnumProperty(
        name="Direction",
        items=(("NEXT", "Next", "The next doubtful frame"), ("PREVIOUS", "Previous", "The previous doubtful frame")),
        default="NEXT",
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        try:
            review, plate = last_review(context)
        except HostError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        step = 1 if self.direction == "NEXT" else -1
        target = review.next_doubtful(scene.frame_current + plate.shift, step)
        if target is None:
            where = "after" if step > 0 else "before"
            self.report({"INFO"}, f"no doubtful frame {where} frame {scene.frame_current}")
            return {"CANCELLED"}
        scene.frame_set(target - plate.shift)
        self.report({"INFO"}, _frame_text(review, target, plate.shift))
        return {"FINISHED"}


class TCVOM_OT_key_suggested(bpy.types.Operator):
    """Go to the frame the last run suggests keying next and add a keyframe there,
    starting from its propagated trimap, to correct and pull again"""

    bl_idname = "tcvom.key_suggested"
    bl_label = "Key Suggested Frame"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        try:
            review, plate = last_review(context)
            keyed = [item.frame + plate.shift for item in scene.tcvom.keyframes]
            target = review.best_suggestion(keyed)
            if target is None:
                self.report({"INFO"}, "the review suggests no frame that is not keyed already")
                return {"CANCELLED"}
            scene.frame_set(target - plate.shift)
            item, note = add_keyframe(context, target - plate.shift)
        except HostError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        keyed_since(context)
        show_image(context, item.image)
        self.report({"INFO"}, f"{_frame_text(review, target, plate.shift)}; {note}")
        return {"FINISHED"}


classes = (TCVOM_OT_doubtful_jump, TCVOM_OT_key_suggested)
