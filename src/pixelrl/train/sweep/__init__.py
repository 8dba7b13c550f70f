"""Studies: configurations x seeds on Ray Tune (``pixelrl-train sweep``), and their summaries across seeds.

- `study`: a study read from a study file and flags, checked whole before Ray starts.
- `engine`: the Ray Tune run (one trial per configuration and seed, each a training run).
- `summary`: per configuration, final success with a 95% interval and time to 50% / 80%.
- `command`: the ``sweep`` subcommand.

Ray Tune is an optional dependency: ``pip install "pixelrl[sweep]"``.
"""
