"""Colour: what the networks see, converted with OpenColorIO.

The networks (and the classical method) work on display-referred, sRGB-encoded RGB in
[0, 1], the way their training images were stored. Plates are converted with
OpenColorIO from their colour space to ``sRGB Encoded Rec.709 (sRGB)``:

- float files (EXR, float TIFF) default to scene-linear Rec.709 (``Linear Rec.709 (sRGB)``);
- integer files (PNG, JPEG, 8/16-bit TIFF, DPX) default to sRGB (no conversion);
- ``colorspace=`` (``--input-colorspace``) overrides: any colour space name or alias of the
  config, e.g. ``ACEScg``, ``ACES2065-1``, ``ADX10`` (DPX log), ``ARRI LogC4``.

The config is OpenColorIO's built-in studio config unless ``config=`` names a ``.ocio``
file or another built-in config (``$OCIO`` is not read implicitly, so a farm machine and
an artist's workstation give the same result; pass ``--ocio-config "${OCIO:?}"`` to use it).
In another config the two spaces above are found by name or alias, or identified by
OpenColorIO through the config's ``aces_interchange`` role; a config where neither finds
one is refused, as is a transform OpenColorIO cannot build (a missing LUT file).
After conversion values are clamped to [0, 1]; NaN and infinite pixels are set to 0 and
counted, so the caller can report them per frame.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tcvom.errors import InputError, command_word

BUILTIN_CONFIG = "studio-config-latest"
TARGET = "sRGB Encoded Rec.709 (sRGB)"
DEFAULT_FLOAT = "Linear Rec.709 (sRGB)"

ALIKE = 0.04
"""How far (in code values from 0 to 1) a header's colour space may read from the one tcvom
takes a file in and still be the same picture (:meth:`ColourConverter.contradicted`)."""


def _config(name: str) -> Any:
    """The OpenColorIO config of ``name`` (a file or a built-in config's name), loaded once
    per state of its file in a process (an edited file is loaded again)."""
    from tcvom.io.hashing import file_identity

    try:
        state = file_identity(name) if Path(name).is_file() else None
    except OSError:
        state = None
    return _load_config(name, state)


@lru_cache(maxsize=8)
def _load_config(name: str, state: Any) -> Any:
    import PyOpenColorIO as ocio

    if Path(name).is_dir():
        raise InputError("this is a folder, not an OpenColorIO config file", path=name,
                         hint="name the .ocio file inside it")
    as_path = not name.startswith("ocio://") and ("/" in name or "\\" in name)  # not a built-in config's name
    try:
        if Path(name).suffix == ".ocio" or Path(name).is_file() or as_path:
            if not Path(name).is_file():
                raise InputError("OpenColorIO config file not found", path=name)
            return ocio.Config.CreateFromFile(name)  # pyright: ignore[reportAttributeAccessIssue]  (compiled module, no stubs)
        return ocio.Config.CreateFromBuiltinConfig(name)  # pyright: ignore[reportAttributeAccessIssue]  (compiled module, no stubs)
    except ocio.Exception as exc:  # pyright: ignore[reportAttributeAccessIssue]
        if Path(name).suffix.lower() in _CONFIG_SUFFIXES and not name.startswith("ocio://") \
                and not Path(name).is_file():  # config.yaml: a file
            raise InputError("OpenColorIO config file not found (nor a built-in config of that name)",
                             path=name) from exc
        raise InputError(f"cannot load the OpenColorIO config ({exc})", path=name) from exc


_CONFIG_SUFFIXES = (".ocioz", ".yaml", ".yml", ".config")
"""Suffixes of a config file that ``--ocio-config`` names without a folder (``.ocio`` is
always a file)."""


def config_file(name: str | None) -> bool:
    """Whether ``--ocio-config`` ``name`` names a config file (else a built-in config)."""
    return bool(name) and (Path(str(name)).suffix == ".ocio" or Path(str(name)).is_file())


def config_reference(name: str | None) -> str | None:
    """``name`` as a record keeps it: a config file as an absolute path (a later run from
    another folder finds it), a built-in config by its name."""
    if name and config_file(name):
        return str(Path(name).absolute())
    return name


def config_identity(name: str | None) -> str | None:
    """What a config's conversions are made of, for the records of a stage's settings: a
    config file's content (``sha256:...`` of its bytes: an edited file is another config, a
    copy on another mount the same; OpenColorIO's cache id would also hold the folder its
    search path is resolved in), a built-in config's cache id; None without a config. The
    LUT files a config names and the environment variables it reads are not part of it."""
    if not name:
        return None
    if config_file(name):
        _config(name)  # a file OpenColorIO cannot read is an error here, as for the conversions
        from tcvom.io.hashing import file_sha256

        return f"sha256:{file_sha256(name)}"
    return str(_config(name).getCacheID())


def interop_id(space: str, config: str | None = None) -> str:
    """The colour interop id (``colorInteropID``: ``lin_rec709_scene``, ``lin_ap1_scene``)
    of ``space`` in ``config`` (default: the built-in studio config): the space's own, else
    the name or alias of it that is one of the built-in studio config's interop ids (a
    config of OpenColorIO before 2.5, as Blender's, declares none but lists them as
    aliases); empty where it has none."""
    found = _config(config or BUILTIN_CONFIG).getColorSpace(space)
    if found is None:
        return ""
    getter = getattr(found, "getInteropID", None)
    own = str(getter() or "") if getter is not None else ""
    if own or not config:
        return own
    known = _builtin_interop_ids()
    named = [name for name in (found.getName(), *found.getAliases()) if name in known]
    # a file holds scene or texture data, not a display's signal: Blender's "sRGB" lists
    # srgb_rec709_display before srgb_rec709_scene
    return next((name for name in named if not name.endswith("_display")), named[0] if named else "")


@lru_cache(maxsize=1)
def _builtin_interop_ids() -> frozenset[str]:
    spaces = _config(BUILTIN_CONFIG).getColorSpaces()
    return frozenset(str(cs.getInteropID()) for cs in spaces if getattr(cs, "getInteropID", None) and cs.getInteropID())


def colour_space_names(config: str | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The colour spaces of ``config`` (default: the built-in studio config) with their
    aliases, and its roles (role -> space): every name ``--input-colorspace`` takes."""
    loaded = _config(config or BUILTIN_CONFIG)
    spaces = {cs.getName(): list(cs.getAliases()) for cs in loaded.getColorSpaces()}
    roles = {str(role): str(space) for role, space in loaded.getRoles()}
    return spaces, roles


def colour_spaces(config: str | None = None) -> list[str]:
    """Names of the colour spaces in ``config`` (default: the built-in studio config)."""
    return list(colour_space_names(config)[0])


ACES_ROLE = "aces_interchange"
"""The OpenColorIO role (configs 2.2 and later) :meth:`ColourConverter.chromaticities` measures through."""
AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
"""ACES2065-1's primaries and white (SMPTE ST 2065-1), as OpenEXR ``chromaticities``."""
D65 = (0.3127, 0.329)
PRIMARIES = {
    "ACES2065-1": AP0,
    "ACEScg": (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, *AP0[6:]),
    "Linear Rec.2020": (0.708, 0.292, 0.17, 0.797, 0.131, 0.046, *D65),
    "Linear P3-D65": (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, *D65),
}
"""Scene-linear spaces of the built-in configs by the primaries an OpenEXR header names
(``chromaticities``), for the space a plate's header says it is in."""


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def _rgb_to_xyz(chromaticities: tuple[float, ...]) -> np.ndarray:
    """The RGB -> XYZ matrix of primaries and white given as ``chromaticities`` (white Y 1)."""
    xy = np.array(chromaticities, dtype=np.float64).reshape(4, 2)
    primaries = np.column_stack([_xyz(x, y) for x, y in xy[:3]])
    return primaries * np.linalg.solve(primaries, _xyz(*xy[3]))


def _bradford(source: tuple[float, float], target: tuple[float, float]) -> np.ndarray:
    """The Bradford chromatic adaptation of XYZ from white ``source`` to white ``target`` (x, y)."""
    cone = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    gain = (cone @ _xyz(*target)) / (cone @ _xyz(*source))
    return np.linalg.inv(cone) @ np.diag(gain) @ cone


_D60_TO_D65 = _bradford((AP0[6], AP0[7]), D65)


class ColourConverter:
    """Converts plates from ``source`` (or the per-format default) to the networks' sRGB.

    The spaces tcvom itself names (:data:`TARGET`, :data:`DEFAULT_FLOAT`) are the built-in
    studio config's; in another config they are found by name or alias, or else identified
    by OpenColorIO through the config's interchange roles (``aces_interchange``). A config in
    which neither finds them is refused, naming the config and the space.
    """

    def __init__(self, source: str | None = None, config: str | None = None) -> None:
        self.config_name = config or BUILTIN_CONFIG
        self.config = _config(self.config_name)
        self.source = source
        self._processors: dict[str, Any] = {}
        self._spaces: dict[str, str] = {}
        self.target = self._space(TARGET, "the space the networks see")
        if source is not None:
            self._check(source)
            if not self._same(source, self.target):  # one that cannot be built (a missing LUT) is refused now
                self._processor(source)

    def _check(self, name: str) -> None:
        if self.config.getColorSpace(name) is None:
            raise InputError(
                f"unknown input colour space {name!r} in the OpenColorIO config {self.config_name!r}",
                hint="list them with: tcvom info --colorspaces" + (
                    f" --ocio-config {command_word(self.config_name)}" if self.config_name != BUILTIN_CONFIG else ""),
            )

    def _space(self, builtin: str, role: str) -> str:
        """The config's name for the built-in studio config's colour space ``builtin``."""
        known = self._spaces.get(builtin)
        if known is not None:
            return known
        space = self.config.getColorSpace(builtin)
        if space is not None:
            name = space.getName()
        else:
            import PyOpenColorIO as ocio

            try:
                name = ocio.Config.IdentifyBuiltinColorSpace(  # pyright: ignore[reportAttributeAccessIssue]
                    self.config, _config(BUILTIN_CONFIG), builtin)
            # a LUT file missing from the config's search path raises the second (not a subclass)
            except (ocio.Exception, ocio.ExceptionMissingFile) as exc:  # pyright: ignore[reportAttributeAccessIssue]
                # one of the built-in space's aliases (srgb_tx, srgb_texture...): Blender's config
                # names its sRGB so, a display-referred space the identification does not match
                # (a list: getAliases() is an iterator, which the search would use up)
                ours = _config(BUILTIN_CONFIG).getColorSpace(builtin)
                if ours is None:  # OpenColorIO before 2.4: its studio config names its spaces otherwise
                    raise InputError(
                        f"this OpenColorIO ({ocio.__version__}) has a built-in studio config without the colour "
                        f"space {builtin!r} ({role})", hint="install OpenColorIO 2.5 or later "
                        "(pip install 'opencolorio>=2.5'), as tcvom requires") from exc
                aliases = list(ours.getAliases())
                found = next((self.config.getColorSpace(a) for a in aliases if self.config.getColorSpace(a)), None)
                if found is None and isinstance(exc, ocio.ExceptionMissingFile):  # pyright: ignore[reportAttributeAccessIssue]
                    raise InputError(
                        f"OpenColorIO cannot look for the colour space {builtin!r} ({role}) in the config: a file "
                        f"it names is missing ({exc})", path=self.config_name,
                        hint="put the config's LUT files where its search_path says (a config copied without its "
                        "folders?), or leave --ocio-config out") from exc
                if found is None:
                    if not self.config.hasRole("aces_interchange"):
                        fix = "give the config an aces_interchange role (as OpenColorIO 2.2 and later configs have)"
                    elif builtin == TARGET:  # what the networks see: no flag names it
                        fix = f"add the space to the config, or one of its names ({aliases[0] if aliases else builtin}) " \
                              "as an alias of the config's own sRGB-encoded Rec.709 space"
                    else:
                        fix = "name the space with --input-colorspace as this config names it"
                    raise InputError(
                        f"the OpenColorIO config has no colour space {builtin!r} ({role}) nor one of its aliases "
                        f"({', '.join(aliases) or 'none'}), and OpenColorIO could not identify one in it ({exc})",
                        path=self.config_name,
                        hint=fix + ", or leave --ocio-config out: the built-in studio config covers ACES, ARRI, Sony, "
                        "RED and more (tcvom info --colorspaces)",
                    ) from exc
                name = found.getName()
        self._spaces[builtin] = name
        return name

    def source_for(self, is_float: bool) -> str:
        """The colour space a file is taken to be in."""
        return self.source if self.source is not None else self.default_for(is_float)

    def default_for(self, is_float: bool) -> str:
        """The colour space a file is taken to be in without ``--input-colorspace``."""
        if is_float:
            return self._space(DEFAULT_FLOAT, "what float plates are taken to be in without --input-colorspace")
        return self.target

    def given_setting(self, is_float: bool) -> str | None:
        """``--input-colorspace`` as a job records it: the config's own name of the space
        given (an alias, a role and another case are the same space), None where that is
        the default of the plate's files (as when none is given)."""
        if self.source is None:
            return None
        try:
            default = self.default_for(is_float)
        except InputError:  # a config without tcvom's defaults: the space named is no default
            default = None
        if default is not None and self._same(self.source, default):
            return None
        return self.config.getColorSpace(self.source).getName()

    def same_setting(self, recorded: object, is_float: bool) -> bool:
        """Whether an ``--input-colorspace`` recorded by an earlier run (as typed, by tcvom
        before 2026-12-07: an alias, another case, the default by name) names the space
        :meth:`given_setting` names now."""
        if recorded is not None and (not isinstance(recorded, str) or self.config.getColorSpace(recorded) is None):
            return False
        try:
            earlier = ColourConverter(recorded, self.config_name).given_setting(is_float)
        except InputError:  # a space the config cannot convert any more: not the same
            return False
        return earlier == self.given_setting(is_float)

    def _processor(self, source: str, target: str | None = None) -> Any:
        """The CPU processor ``source -> target`` (default: the networks' space), built once
        per converter and pair; one that OpenColorIO cannot build is refused."""
        target = target or self.target
        key = f"{source}\0{target}"
        proc = self._processors.get(key)
        if proc is None:
            import PyOpenColorIO as ocio

            self._check(source)
            self._check(target)
            try:
                proc = self.config.getProcessor(source, target).getDefaultCPUProcessor()
            except (ocio.Exception, ocio.ExceptionMissingFile) as exc:  # pyright: ignore[reportAttributeAccessIssue]
                raise InputError(f"OpenColorIO cannot convert {source!r} to {target!r} ({exc})",
                                 path=self.config_name, hint="fix the config, or choose another --input-colorspace") \
                    from exc
            self._processors[key] = proc
        return proc

    def chromaticities(self, space: str) -> tuple[float, ...] | None:
        """OpenEXR's ``chromaticities`` of ``space`` (x, y of its red, green, blue and white),
        measured through the config's scene-referred ``aces_interchange`` role (ACES2065-1,
        whose primaries are fixed) and taken to a D65 white with Bradford, as the built-in
        configs' ``cie_xyz_d65_interchange`` does without depending on a view transform: a
        space of another white (ACES's) comes adapted to D65, and a reader that adapts whites
        reads the same colours. None in a config without the role."""
        if self.config.getColorSpace(ACES_ROLE) is None:
            return None
        rgb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
        self._processor(space, ACES_ROLE).applyRGB(rgb)
        xyz = rgb.astype(np.float64) @ (_D60_TO_D65 @ _rgb_to_xyz(AP0)).T
        sums = xyz.sum(axis=1)
        return tuple(round(float(v), 6) for row, total in zip(xyz, sums, strict=True) for v in row[:2] / total)

    def contradicted(self, said: str, is_float: bool) -> str | None:
        """The colour space a file's header says (``said``: OpenImageIO's reading of it), as
        this config names it, where tcvom takes the file in another one; None where the
        header says nothing, agrees, or ``--input-colorspace`` was given."""
        if not said or self.source is not None:
            return None
        space = self.config.getColorSpace(said)
        if space is None:  # a name this config does not know (a site config): the built-in studio config's
            builtin = _config(BUILTIN_CONFIG).getColorSpace(said)
            if builtin is None:  # a name no config here knows: nothing to compare
                return None
            try:  # colour QA: an EXR's colorInteropID lin_ap1_scene under a site config went unsaid
                space = self.config.getColorSpace(self._space(builtin.getName(), "the space a header names"))
            except InputError:  # none in this config: said by the built-in config's name, unless the default's
                default = DEFAULT_FLOAT if is_float else TARGET
                return None if builtin.getName() == default else builtin.getName()
        taken = self.config.getColorSpace(self.source_for(is_float))
        if taken is None or space.getName() == taken.getName():
            return None
        if space.getEncoding() and space.getEncoding() == taken.getEncoding() and self._alike(space.getName(),
                                                                                               taken.getName()):
            return None  # gamma 2.2 for sRGB: one picture
        return space.getName()

    def _alike(self, space: str, taken: str) -> bool:
        """Whether code values in ``space`` read as ``taken`` give the same picture: greys and
        primaries from 0 to 1 within :data:`ALIKE` once converted (gamma 2.2 for sRGB, 0.034 at
        most, near black; colour QA: gamma 1.8 and 2.4, 0.076 and 0.050, counted as sRGB by
        their encoding alone, made a linear output a third too dark, unsaid)."""
        ramp = np.linspace(0.0, 1.0, 33, dtype=np.float32)
        codes = np.concatenate([np.stack([ramp] * 3, axis=1), np.eye(3, dtype=np.float32),
                                0.5 * np.eye(3, dtype=np.float32)])
        converted = codes.copy()
        self._processor(space, taken).applyRGB(converted)
        return bool(np.abs(converted - codes).max() <= ALIKE)

    def primaries_contradicted(self, primaries: tuple[float, ...], is_float: bool) -> str | None:
        """Where a file's ``chromaticities`` (``primaries``) are not those of the space tcvom
        takes it in: the space they are of (:data:`PRIMARIES`), or "other primaries"; None
        where the file has none, they agree, or ``--input-colorspace`` was given. A space is
        named only where the white agrees too (DCI-P3's is not P3-D65's)."""
        if len(primaries) != 8 or self.source is not None:
            return None
        ours = self.chromaticities(self.source_for(is_float))
        if ours is None or np.allclose(ours[:6], primaries[:6], atol=5e-3):
            return None
        for name, known in PRIMARIES.items():
            if self.config.getColorSpace(name) is None:
                continue
            # as the space is defined, or as tcvom writes it (RGBA output: measured through the
            # config, its white adapted to D65: an ACEScg file of tcvom's was 'other primaries')
            written = self.chromaticities(name)
            if np.allclose(known, primaries, atol=5e-3) or (
                    written is not None and np.allclose(written, primaries, atol=5e-3)):
                return name
        return "other primaries"

    def describes(self, primaries: tuple[float, ...], space: str) -> bool:
        """Whether a header's ``chromaticities`` (``primaries``) are those of ``space``: as
        the space is defined (:data:`PRIMARIES`) or as tcvom writes it (measured through the
        config, its white adapted to D65)."""
        if len(primaries) != 8:
            return False
        ours = self.chromaticities(space)
        if ours is not None and np.allclose(ours, primaries, atol=5e-3):
            return True
        return any(self.config.getColorSpace(name) is not None and self._same(name, space)
                   and np.allclose(known, primaries, atol=5e-3) for name, known in PRIMARIES.items())

    def _same(self, a: str, b: str) -> bool:
        first, second = self.config.getColorSpace(a), self.config.getColorSpace(b)
        return first is not None and second is not None and first.getName() == second.getName()

    def linear_space(self, is_float: bool) -> str:
        """The scene-linear space RGBA output is estimated and written in: the plate's own
        colour space when it is scene-linear (float files by default, ``ACEScg``...), else
        :data:`DEFAULT_FLOAT` (sRGB files, log and video spaces are linearised to it).
        A config whose spaces declare no encoding: float files stay in their space."""
        source = self.source_for(is_float)
        encoding = self.config.getColorSpace(source).getEncoding()
        if encoding == "scene-linear" or (not encoding and is_float):
            return self.config.getColorSpace(source).getName()
        return self._space(DEFAULT_FLOAT, "the scene-linear space RGBA output is written in")

    def keeps_space(self, is_float: bool) -> bool:
        """Whether :meth:`linear_space` is the file's own colour space (RGBA output then
        carries the plate's primaries)."""
        return self._same(self.source_for(is_float), self.linear_space(is_float))

    def from_network(self, rgb: np.ndarray, target: str) -> np.ndarray:
        """float32 ``H x W x 3`` display-referred sRGB (the networks' space) -> ``target``."""
        pixels = np.array(rgb, dtype=np.float32, order="C")
        if not self._same(self.target, target):
            self._processor(self.target, target).applyRGB(pixels)
        return pixels

    def to_network_from(self, rgb: np.ndarray, source: str) -> np.ndarray:
        """float32 ``H x W x 3`` in ``source`` (a plate's linear space) -> display-referred
        sRGB in [0, 1], the networks' space (what a preview shows)."""
        pixels = np.array(rgb, dtype=np.float32, order="C")  # a copy: the caller's stays as it is
        self._convert(pixels, source, self.target)
        return np.clip(pixels, 0.0, 1.0, out=pixels)

    def _convert(self, pixels: np.ndarray, source: str, target: str) -> int:
        """Convert ``pixels`` in place; values the conversion makes NaN or infinite (a log
        curve given values far past its range: a linear plate declared ACEScct or LogC) are
        set to 0. Returns how many."""
        if self._same(source, target):
            return 0
        self._processor(source, target).applyRGB(pixels)
        bad = ~np.isfinite(pixels)
        count = int(bad.sum())
        if count:
            pixels[bad] = 0.0
        return count

    def to_linear(self, rgb: np.ndarray, is_float: bool) -> np.ndarray:
        """float32 ``H x W x 3`` in the file's colour space -> :meth:`linear_space`, never
        clamped (highlights above 1 and negative values stay); NaN and infinities are 0."""
        pixels = np.array(rgb, dtype=np.float32, order="C")
        pixels[~np.isfinite(pixels)] = 0.0
        self._convert(pixels, self.source_for(is_float), self.linear_space(is_float))
        return pixels

    def to_network(self, rgb: np.ndarray, is_float: bool) -> tuple[np.ndarray, int]:
        """float32 ``H x W x 3`` in the file's colour space -> sRGB in [0, 1].

        Returns the converted pixels and the number of non-finite values that were set to 0
        (in the file, or made by the conversion from its colour space).
        """
        pixels = np.array(rgb, dtype=np.float32, order="C")
        bad = ~np.isfinite(pixels)
        count = int(bad.sum())
        if count:
            pixels[bad] = 0.0
        count += self._convert(pixels, self.source_for(is_float), self.target)
        return np.clip(pixels, 0.0, 1.0, out=pixels), count
