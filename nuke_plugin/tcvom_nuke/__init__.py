"""tcvom for Nuke: the TCVOM_Matte node (tcvom runs out of process) and the Inference gizmo.

- :mod:`tcvom_nuke.matte`: everything that is not a call into ``nuke`` (knob values as
  data, which frames to render, cache keys, command lines, the worker loop). Stdlib only.
- :mod:`tcvom_nuke.nukenode`: the few calls into ``nuke`` (Compute button, Write renders,
  ``ProgressTask``, ``executeInMainThread``, ``nuke.message``).
- :func:`hostclient`: tcvom's shared host-adapter logic (``tcvom.hosts.client``), found as
  described in :mod:`tcvom_nuke.host`.

Python 3.9-3.11 (Nuke 14-16).
"""

from __future__ import annotations

__version__ = "0.1.0"
