"""Copy a finished run's final checkpoint out of its run folders, as a checkpoint others can use offline.

    python benchmarks/learning/ship_checkpoint.py STUDY/checkpoints/<run>.zip --name fetchreach-pixels \\
        --out examples/pretrained --made-by "pixelrl-train sweep --study ... (trial n_steps-1, seed 0)"

Writes ``<out>/<name>.zip``, ``<name>.meta.json`` and, for a ``--normalize`` run,
``<name>.vecnormalize.pkl`` (the checkpoint's observation statistics). The metadata is the run's
own, with the file names updated, the output folders reset to ``.`` (the training machine's paths
mean nothing elsewhere) and ``made_by`` recording the command that trained it. Evaluate the copy
with ``pixelrl-train eval <out>/<name>.zip --episodes 100``: the results land next to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from pixelrl.train.run.checkpoints import read_meta
from pixelrl.train.run.normalization import statistics_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a run's final checkpoint zip (its .meta.json beside it)")
    parser.add_argument("--name", required=True, help="file name of the copy, without .zip")
    parser.add_argument("--out", type=Path, default=Path("examples/pretrained"))
    parser.add_argument("--made-by", required=True, help="the command that trained the run")
    args = parser.parse_args()

    source_meta = args.checkpoint.with_name(args.checkpoint.name.removesuffix(".zip") + ".meta.json")
    meta = read_meta(source_meta)
    if meta["model"] != args.checkpoint.name:
        raise SystemExit(f"{args.checkpoint} is not a run's final checkpoint (its metadata names {meta['model']}).")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.name}.zip"
    shutil.copyfile(args.checkpoint, target)
    meta["model"] = target.name
    if meta.get("vec_normalize"):
        shutil.copyfile(statistics_path(args.checkpoint), statistics_path(target))
        meta["vec_normalize"] = statistics_path(target).name
    meta["config"].update(out_dir=".", checkpoints_dir=None, results_dir=None, runs_dir=None, resume=False)
    meta["made_by"] = args.made_by
    target.with_name(f"{args.name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{target} ({target.stat().st_size / 1e6:.1f} MB), {meta['num_timesteps']} env steps")


if __name__ == "__main__":
    main()
