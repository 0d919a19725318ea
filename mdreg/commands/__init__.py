"""Every command-line front end of mdreg, one module each, named like its tool: ``launch``,
``registry``, ``sample``, ``evaluate``, ``report``, ``fid`` (and ``tools/metrics.py``),
``shape_fid``, ``toy_report``, ``bench``, ``bench_data``, ``convert``, ``encode_latents``.
``tools/<name>.py`` and the console script ``mdreg-<name>`` both run ``main`` of
``mdreg/commands/<name>.py`` through :mod:`mdreg.commands.entry` (one error line and exit
status 2 for bad input)."""
