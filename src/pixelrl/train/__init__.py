"""``pixelrl-train``: training runs and studies from one command (see ``pixelrl-train --help``).

- `config`: every setting declared once; presets, demos and config files laid over it.
- `run`: one run: preflight, envs and model, learning, checkpoints, evaluation.
- `results`: reading what runs wrote: progress logs, phases, plots, comparison tables.
- `cli` and `commands`: the subcommand table and what each subcommand runs.
"""
