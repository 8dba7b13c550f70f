"""Wall-clock levers of a DrQv2SAC run: the compiled update and overlapped collection, alone and together.

Two settings, each run with pixelrl-train's own factory (``pixelrl.train.run.factory``), so every
variant is exactly the model ``pixelrl-train train`` builds:

- ``chapter``: the defaults (FetchPush-v4 pixels 84 x 84, frame stack 4, batch 256, one gradient
  step per vec-env step) with 4 ``--vec-env subproc`` envs;
- ``fetchreach``: ``--preset fetchreach`` (FetchReach-v4, strict goals, 32 x 32, batch 128, frame
  stack 2, VecNormalize), where rendering and per-step overhead weigh more. The preset has 1 env;
  overlap needs subprocess envs, so here EVERY variant runs 2 subprocess envs with gradient_steps 2
  (the preset's one update per env step).

Variants, in the same run: ``defaults``; ``compile`` (``--compile-update``); ``overlap``
(``--overlap``); ``compile+overlap``; ``no-antialias`` (``--no-antialias``: one render sample per
pixel, a different image); ``online-target`` (``--target-encoder online``: DrQ-v2's own target, one
encoder pass fewer per update, a different algorithm); ``all`` (compile, overlap and no-antialias
together); ``bf16`` (``--precision bf16``: the CNN in bfloat16, different numerics); ``all+bf16``;
``compile+no-antialias`` and ``compile+no-antialias+bf16`` (``all`` and ``all+bf16`` without
overlap, which adds no core on a 2-core machine); ``keep-memory`` (``--keep-freed-memory``),
``all+keep``, ``all+keep+bf16`` (``--variants`` picks some). Each segment runs in its own process,
in the order above, then back (ABBA), each half of the timed steps, so that drift on a shared
machine hits all alike; ``--repeats N`` makes N such
passes and reports each variant's ratio to the defaults per pass (short segments on a shared
virtual machine differ by 15-20% from one pass to the next). A segment collects
``learning_starts`` env steps, makes its first update (which compiles, for the compile variants:
timed apart as the compile time) and then times ``learn()`` end to end, env steps/s. All processes
share one fresh inductor cache: the first compile of each setting is cold, later ones of the same
graphs warm (both are reported). Last, one process per ``--update-threads`` count and allocator
(glibc's default, then kept freed memory) times ``train()`` alone at batch 256 on the chapter's
observation (random frames, no rendering): eager, compiled, and both with the bf16 CNN, updates/s,
each one's ratio to eager, kernel CPU time per update, and the compile times; then it profiles a few
steps of each (``torch.profiler``): the milliseconds per step spent in oneDNN's convolutions and
elsewhere, and from them the most a compiled update could gain over eager while the convolutions
stay as they are (``convolution_bound``: eager step / eager convolutions). ``--settings`` with no
setting times ``train()`` alone.

Figures are only meaningful on an otherwise idle machine (the JSON records the load averages):

    python benchmarks/wallclock.py                  # the measurement: a few minutes; writes results/wallclock.json
    python benchmarks/wallclock.py --device cuda    # on a GPU (CUDA graphs with --compile-update)
    python benchmarks/wallclock.py --quick          # smoke test: tiny steps and batches, prints only
    python benchmarks/wallclock.py --table benchmarks/results/wallclock.json   # its figures as Markdown

Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "wallclock.json"
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "compile": {"compile_update": True},
    "overlap": {"overlap": True},
    "compile+overlap": {"compile_update": True, "overlap": True},
    "no-antialias": {"antialias": False},
    "online-target": {"target_encoder": "online"},
    "all": {"compile_update": True, "overlap": True, "antialias": False},
    "bf16": {"precision": "bf16"},
    "all+bf16": {"compile_update": True, "overlap": True, "antialias": False, "precision": "bf16"},
    "compile+no-antialias": {"compile_update": True, "antialias": False},
    "compile+no-antialias+bf16": {"compile_update": True, "antialias": False, "precision": "bf16"},
    "keep-memory": {"keep_freed_memory": True},
    "all+keep": {"compile_update": True, "overlap": True, "antialias": False, "keep_freed_memory": True},
    "all+keep+bf16": {
        "compile_update": True, "overlap": True, "antialias": False, "keep_freed_memory": True, "precision": "bf16",
    },
}  # fmt: skip
UPDATE_VARIANTS: dict[str, dict[str, Any]] = {
    "eager": {"compile_update": False, "precision": "fp32"},
    "compiled": {"compile_update": True, "precision": "fp32"},
    "eager-bf16": {"compile_update": False, "precision": "bf16"},
    "compiled-bf16": {"compile_update": True, "precision": "bf16"},
}
REPORTED = (
    "env", "n_envs", "vec_env", "batch_size", "image_size", "gradient_steps", "compile_update", "overlap", "antialias",
    "target_encoder", "precision", "keep_freed_memory",
)  # fmt: skip
SETTINGS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "chapter": (None, {"env": "FetchPush-v4", "n_envs": 4}),
    "fetchreach": ("fetchreach", {"n_envs": 2, "gradient_steps": 2}),
}


def config_for(args: argparse.Namespace, setting: str, variant: str) -> Any:
    """The TrainConfig of one setting and variant, sized for a benchmark segment."""
    from pixelrl.train.config import overlay, resolve_base

    preset, changes = SETTINGS[setting]
    run: dict[str, Any] = {
        **changes, **VARIANTS[variant], "vec_env": "subproc", "learning_starts": args.learning_starts,
        "buffer_size": args.buffer_size, "checkpoint_freq": 0, "eval_freq": 0, "eval_episodes": 0,
        "grad_norm_freq": 0, "progress": False, "threads": args.threads, "device": args.device, "seed": 0,
    }  # fmt: skip
    if args.quick:
        run.update(batch_size=16, env_kwargs={"max_episode_steps": 10})
    config = overlay(resolve_base(preset, None), run, source="wallclock.py")
    config.validate()
    return config


def run_segment(args: argparse.Namespace) -> dict[str, Any]:
    """One variant of one setting in this process: collect, first update, then ``args.steps`` timed env steps."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure

    from pixelrl.train.run.factory import build_model, check_env_id, make_vec_env
    from pixelrl.train.run.preflight import apply_process_settings

    class Timer(BaseCallback):
        """From the first rollout after the first update (compile included there) to the end."""

        def __init__(self) -> None:
            super().__init__()
            self.start: tuple[float, int, int] | None = None
            self.first_update_seconds = 0.0
            self._collected_at: float | None = None
            self.seconds, self.steps, self.updates = 0.0, 0, 0

        def _on_rollout_end(self) -> None:
            if self.model._n_updates == 0:  # type: ignore[attr-defined]
                self._collected_at = time.perf_counter()

        def _on_rollout_start(self) -> None:
            n_updates = self.model._n_updates  # type: ignore[attr-defined]
            if self.start is None and n_updates > 0:
                self.first_update_seconds = time.perf_counter() - (self._collected_at or time.perf_counter())
                self.start = (time.perf_counter(), self.num_timesteps, n_updates)

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if self.start is not None:
                self.seconds = time.perf_counter() - self.start[0]
                self.steps = self.num_timesteps - self.start[1]
                self.updates = self.model._n_updates - self.start[2]  # type: ignore[attr-defined]

    config = config_for(args, args.setting, args.variant)
    apply_process_settings(config)  # torch threads; glibc's malloc with keep_freed_memory
    check_env_id(config.env)
    start = time.perf_counter()
    vec_env = make_vec_env(config)
    vec_env_start = time.perf_counter() - start
    model = build_model(config, vec_env)
    model.set_logger(configure(folder=None, format_strings=[]))
    timer = Timer()
    load = os.getloadavg()[0]
    model.learn(config.learning_starts + 2 * config.n_envs + args.steps, callback=timer)
    vec_env.close()
    return {
        "setting": args.setting,
        "variant": args.variant,
        "seconds": timer.seconds,
        "env_steps": timer.steps,
        "updates": timer.updates,
        "first_update_seconds": round(timer.first_update_seconds, 3),
        "compile_seconds": getattr(model, "compile_seconds", None),
        "vec_env_start_seconds": round(vec_env_start, 2),
        "load_average_1min_at_start": round(load, 2),
        "device": str(model.device),
        "config": {key: config.to_dict()[key] for key in REPORTED},
    }


def run_updates(args: argparse.Namespace) -> dict[str, Any]:
    """Updates/s of ``train()`` alone per `UPDATE_VARIANTS`, on one shared buffer of random chapter observations."""
    import torch
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import get_device
    from update_throughput import FakeFetchEnv, filled_buffer

    from pixelrl.algos import DrQv2SAC
    from pixelrl.train.run.factory import algorithm_kwargs
    from pixelrl.train.run.preflight import apply_process_settings

    base = config_for(args, "chapter", "defaults").replace(
        batch_size=args.update_batch_size, keep_freed_memory=args.keep_freed_memory
    )
    apply_process_settings(base)  # torch threads; glibc's malloc with --keep-freed-memory
    device = get_device(args.device)
    env = FakeFetchEnv(base.image_size, base.frame_stack)
    buffer = filled_buffer(env, args.update_buffer_size, augment=False, seed=0, device=device)
    models = {}
    compile_seconds = {}
    for name, variant in UPDATE_VARIANTS.items():
        config = base.replace(precision=variant["precision"])
        kwargs = {**algorithm_kwargs(config), "replay_buffer_class": None, "replay_buffer_kwargs": {}, "buffer_size": 1}
        kwargs.update(compile_update=variant["compile_update"], device=device)
        model = DrQv2SAC(env=env, **kwargs)
        model.replay_buffer = buffer
        model.set_logger(configure(folder=None, format_strings=[]))
        model.train(gradient_steps=1, batch_size=config.batch_size)  # warm-up; compiles the compiled ones
        if model.compile_seconds is not None:
            compile_seconds[name] = round(model.compile_seconds, 1)
        models[name] = model
    seconds: dict[str, list[float]] = {name: [] for name in models}
    system_seconds: dict[str, float] = dict.fromkeys(models, 0.0)
    names = list(models)
    for round_index in range(args.update_rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start, kernel_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
            models[name].train(gradient_steps=args.update_steps, batch_size=base.batch_size)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[name].append(time.perf_counter() - start)
            system_seconds[name] += resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel_start
    rates = {name: statistics.median(args.update_steps / s for s in times) for name, times in seconds.items()}
    profiles = {name: profile_update(model, base.batch_size, args.profile_steps) for name, model in models.items()}
    return {
        "batch_size": base.batch_size,
        "torch_threads": args.threads,
        "keep_freed_memory": args.keep_freed_memory,
        "device": str(device),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "updates_per_s_median": {name: round(rate, 3) for name, rate in rates.items()},
        "updates_per_s_per_round": {name: [round(args.update_steps / s, 3) for s in t] for name, t in seconds.items()},
        "ratio_vs_eager": {name: round(rate / rates["eager"], 3) for name, rate in rates.items()},
        "compiled_vs_eager_same_precision": {
            precision: round(rates[f"compiled{suffix}"] / rates[f"eager{suffix}"], 3)
            for precision, suffix in (("fp32", ""), ("bf16", "-bf16"))
        },
        "kernel_cpu_seconds_per_update": {
            name: round(system_seconds[name] / (args.update_rounds * args.update_steps), 3) for name in models
        },
        "compile_seconds": compile_seconds,
        "profile": profiles,
        "convolution_bound": convolution_bound(profiles),
        "note": "train() alone: sampling from a DictReplayBuffer of random frames, no env, no HER; "
        "the bf16 variants compute the CNN in bfloat16 (different numerics)",
    }


CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward", "mkldnn::_convolution_pointwise")
"""The profiler's names of the CPU convolution kernels (oneDNN, forward and backward), eager or compiled."""


def profile_update(model: Any, batch_size: int, steps: int) -> dict[str, float]:
    """Milliseconds per gradient step in oneDNN's convolutions and in everything else, from torch.profiler.

    A convolution's self CPU time is its wall time on the calling thread (oneDNN's other threads
    work inside it), so ``convolution_ms`` is the part of a step that a compiler which leaves the
    convolutions to oneDNN (as inductor does on CPU) cannot shorten.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        model.train(gradient_steps=steps, batch_size=batch_size)
        step_ms = 1000 * (time.perf_counter() - start) / steps
    conv_ms = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in CONVOLUTIONS) / 1000 / steps
    return {"step_ms": round(step_ms, 1), "convolution_ms": round(conv_ms, 1), "other_ms": round(step_ms - conv_ms, 1),
            "convolution_share": round(conv_ms / step_ms, 3)}  # fmt: skip


def convolution_bound(profiles: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """The most a compiled fp32 update could gain with the eager update's convolutions unchanged (Amdahl).

    ``eager step / eager convolutions``: the ratio to eager of an update whose every
    non-convolution cost were zero. A compiled update can beat it only by making the
    convolutions themselves faster (a layout, fewer reorders, or lower precision).
    """
    eager = profiles.get("eager")
    if eager is None or not eager["convolution_ms"]:
        return None
    return {"eager_convolution_share": eager["convolution_share"],
            "max_ratio_vs_eager": round(eager["step_ms"] / eager["convolution_ms"], 3)}  # fmt: skip


def worker(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__)), *forwarded(args), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, env=args.child_env)
    if out.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def forwarded(args: argparse.Namespace) -> list[str]:
    return [
        "--learning-starts", str(args.learning_starts), "--buffer-size", str(args.buffer_size),
        "--threads", str(args.threads), "--device", args.device, "--update-batch-size", str(args.update_batch_size),
        "--update-rounds", str(args.update_rounds), "--update-steps", str(args.update_steps),
        "--update-buffer-size", str(args.update_buffer_size), "--profile-steps", str(args.profile_steps),
        *(["--quick"] if args.quick else []),
    ]  # fmt: skip


def pooled_rates(segments: list[dict[str, Any]]) -> dict[str, float]:
    """Env steps/s per variant over the given segments: all their env steps over all their seconds."""
    rates = {}
    for variant in VARIANTS:
        mine = [s for s in segments if s["variant"] == variant]
        if mine and sum(s["seconds"] for s in mine) > 0:
            rates[variant] = sum(s["env_steps"] for s in mine) / sum(s["seconds"] for s in mine)
    return rates


def summary(segments: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        runs = [s for s in segments if s["setting"] == setting]
        if not runs:
            continue
        rates = pooled_rates(runs)
        compiles = [s["compile_seconds"] for s in runs if s["compile_seconds"] is not None]
        base = rates.get("defaults")
        # One ratio per ABBA repeat (each variant against the defaults of the same repeat): their spread
        # shows how far one short measurement can be trusted.
        per_repeat = [
            pooled_rates([s for s in runs if s.get("repeat", 0) == r])
            for r in sorted({s.get("repeat", 0) for s in runs})
        ]
        repeat_ratios = {
            name: [round(r[name] / r["defaults"], 3) for r in per_repeat if name in r and r.get("defaults")]
            for name in rates
        }
        out[setting] = {
            "ratio_vs_defaults_per_repeat": repeat_ratios,
            "ratio_vs_defaults_median_of_repeats": {
                name: round(statistics.median(values), 3) for name, values in repeat_ratios.items() if values
            },
            "config": runs[0]["config"]
            | dict.fromkeys(("compile_update", "overlap", "antialias", "target_encoder", "precision"), "per variant"),
            "env_steps_per_s": {name: round(rate, 3) for name, rate in rates.items()},
            "ratio_vs_defaults": {name: round(rate / base, 3) for name, rate in rates.items()} if base else None,
            "compile_seconds": {"first (cold cache)": compiles[0] if compiles else None, "later (warm)": compiles[1:]},
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    """The end-to-end figures of a saved report as a Markdown table (env steps/s and ratio per variant)."""
    settings = list(report["end_to_end"])
    head = "| variant | " + " | ".join(f"{name}: env steps/s (x defaults)" for name in settings) + " |"
    lines = [head, "|---|" + "---|" * len(settings)] if settings else []
    for variant in VARIANTS if settings else ():
        cells = []
        for name in settings:
            figures = report["end_to_end"][name]
            rate, ratio = figures["env_steps_per_s"].get(variant), (figures["ratio_vs_defaults"] or {}).get(variant)
            repeats = figures.get("ratio_vs_defaults_per_repeat", {}).get(variant, [])
            spread = f"; per repeat {min(repeats):.2f}-{max(repeats):.2f}x" if len(repeats) > 1 else ""
            cells.append("-" if rate is None else f"{rate:.2f} ({ratio:.2f}x{spread})")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    updates = report.get("update_only", [])
    updates = [updates] if isinstance(updates, dict) else updates
    if updates:
        columns = [
            f"{u.get('torch_threads', report['settings']['torch_threads'])} thread(s)"
            + (", kept freed memory" if u.get("keep_freed_memory") else "")
            for u in updates
        ]
        lines += ["", f"| train() alone, batch {updates[0]['batch_size']} | " + " | ".join(columns) + " |"]
        lines.append("|---|" + "---|" * len(updates))
        for name in updates[0]["updates_per_s_median"]:
            cells = []
            for u in updates:  # ratios to the default allocator's eager update at the same thread count
                ratio = u.get("ratio_vs_default_allocator_eager", u["ratio_vs_eager"])[name]
                cells.append(f"{u['updates_per_s_median'][name]:.2f} ({ratio:.2f}x)")
            lines.append(f"| {name}: updates/s (x eager, default allocator) | " + " | ".join(cells) + " |")
        if all("compiled_vs_eager_same_precision" in u for u in updates):
            for precision in updates[0]["compiled_vs_eager_same_precision"]:
                cells = [f"{u['compiled_vs_eager_same_precision'][precision]:.2f}x" for u in updates]
                lines.append(f"| compiled / eager, both {precision} | " + " | ".join(cells) + " |")
        profiled = [u for u in updates if "profile" in u]
        if profiled:
            for name in profiled[0].get("kernel_cpu_seconds_per_update", {}):
                cells = [
                    f"{1000 * u.get('kernel_cpu_seconds_per_update', {}).get(name, float('nan')):.0f}" for u in profiled
                ]
                lines.append(f"| {name}: kernel (system) CPU ms per update | " + " | ".join(cells) + " |")
            for name in profiled[0]["profile"]:
                cells = [f"{u['profile'][name]['convolution_ms']:.0f} of {u['profile'][name]['step_ms']:.0f}"
                         for u in profiled]  # fmt: skip
                lines.append(f"| {name}: convolution ms of step ms | " + " | ".join(cells) + " |")
            bounds = [u["convolution_bound"] for u in profiled]
            cells = ["-" if b is None else f"{b['max_ratio_vs_eager']:.2f}x" for b in bounds]
            lines.append("| most a compiled fp32 update can gain, convolutions unchanged | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=None, help="print a saved report's figures as Markdown, and exit")
    parser.add_argument("--quick", action="store_true", help="smoke test: 10-step episodes, batch 16, few steps")
    parser.add_argument("--steps", type=int, default=None, help="timed env steps per variant (default 96; quick 16)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="ABBA passes per setting (each times --steps per variant); ratios per pass",
    )
    parser.add_argument("--learning-starts", type=int, default=None, help=">= one episode per env (default 208)")
    parser.add_argument("--buffer-size", type=int, default=20_000)
    parser.add_argument(
        "--settings",
        nargs="*",
        choices=list(SETTINGS),
        default=list(SETTINGS),
        help="end-to-end settings to time (none: train() alone only)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each learner process")
    parser.add_argument("--device", default="auto", help="torch device (SB3's auto: cuda if present)")
    parser.add_argument("--update-batch-size", type=int, default=256)
    parser.add_argument(
        "--update-threads",
        type=int,
        nargs="*",
        default=[2, 1],
        help="torch threads of train() alone (none: no train()-alone process)",
    )
    parser.add_argument("--update-rounds", type=int, default=4)
    parser.add_argument("--update-steps", type=int, default=3, help="gradient steps per timed train() call")
    parser.add_argument("--update-buffer-size", type=int, default=600)
    parser.add_argument("--profile-steps", type=int, default=3, help="profiled gradient steps per train() variant")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file (default {RESULTS}; none with --quick)")
    parser.add_argument("--keep-inductor-cache", action="store_true", help="use torch's own cache, not a fresh one")
    parser.add_argument("--setting", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--updates", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep-freed-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="end-to-end variants to time (defaults is always timed: the ratios' base)",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.table is not None:
        print(markdown(json.loads(args.table.read_text())), end="")
        return
    if args.quick:
        args.learning_starts = args.learning_starts or 48
        args.steps = args.steps or 16
        args.update_batch_size, args.update_rounds, args.update_steps, args.update_buffer_size = 16, 2, 1, 64
        args.profile_steps = 1
    args.learning_starts = args.learning_starts or 208
    args.steps = args.steps or 96
    if args.setting:  # a worker: JSON on the last line
        print(json.dumps(run_segment(args)))
        return
    if args.updates:
        print(json.dumps(run_updates(args)))
        return

    from update_throughput import machine

    with tempfile.TemporaryDirectory(prefix="wallclock-inductor-") as cache:
        args.child_env = dict(os.environ)
        if not args.keep_inductor_cache:
            args.child_env["TORCHINDUCTOR_CACHE_DIR"] = cache
        load_before = os.getloadavg()
        started = time.perf_counter()
        segments = []
        order = ["defaults", *(name for name in VARIANTS if name in args.variants and name != "defaults")]
        halves = [(order, args.steps // 2), (order[::-1], args.steps - args.steps // 2)]
        if args.quick:
            halves = [(order, args.steps)]
        for setting in args.settings:
            for repeat in range(args.repeats):
                for variants, steps in halves:
                    for variant in variants:
                        segment = worker(args, "--setting", setting, "--variant", variant, "--steps", str(steps))
                        segments.append(segment | {"repeat": repeat})
        updates = [
            worker(args, "--updates", "--threads", str(threads), *(["--keep-freed-memory"] if keep else []))
            for threads in args.update_threads
            for keep in (False, True)
        ]
        for report in updates:  # the kept-memory process against the default allocator's eager update
            system = next(u for u in updates if u["torch_threads"] == report["torch_threads"])
            rates, eager = report["updates_per_s_median"], system["updates_per_s_median"]["eager"]
            report["ratio_vs_default_allocator_eager"] = {name: round(rate / eager, 3) for name, rate in rates.items()}
    report = {
        "benchmark": "wallclock",
        "command": shlex.join([sys.executable, *sys.argv]),
        "quick_smoke_test": args.quick,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.perf_counter() - started, 1),
        "settings": {
            "timed_env_steps_per_variant": args.steps,
            "repeats": args.repeats,
            "learning_starts": args.learning_starts,
            "torch_threads": args.threads,
            "device": args.device,
            "inductor_cache": "torch's own" if args.keep_inductor_cache else "fresh, shared by this run's processes",
            "fetchreach": "preset fetchreach with 2 subprocess envs and gradient_steps 2 in every variant "
            "(the preset has 1 env; overlap needs subprocess envs)",
            "chapter": "pixelrl-train defaults (FetchPush-v4, 84x84, batch 256) with 4 subprocess envs",
        },
        "end_to_end": summary(segments),
        "update_only": updates,
        "segments": segments,
    }
    text = json.dumps(report, indent=2)
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
