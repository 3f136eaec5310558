"""Render-farm batch: chunked, resumable tasks of a shot.

- :mod:`tcvom.farm.chunks`: frame selections, chunks and their pre-/post-roll;
- :mod:`tcvom.farm.plan`: the trimap segments and matte chunks of a shot;
- :mod:`tcvom.farm.manifest`: the per-sequence job manifest that stops tasks mixing settings;
- :mod:`tcvom.farm.locks` and :mod:`tcvom.farm.outputs`: race-free publishing, complete outputs;
- :mod:`tcvom.farm.openjd`: the Open Job Description template (``tcvom farm template``);
- :mod:`tcvom.farm.ray_executor`: ``tcvom run --executor ray``.

The tasks themselves are the ordinary jobs of :mod:`tcvom.pipeline` with ``frames=``,
``shot_range=`` and ``segment=``; see ``docs/farm.md``.
"""
