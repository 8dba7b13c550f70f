from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from pixelrl.train.results.compare import SCHEMA, compare_table, format_table, load_results

TAG_COLUMNS = [
    "tag",
    "env",
    "n_seeds",
    "seeds",
    "episodes",
    "success_mean",
    "success_std",
    "success_min",
    "success_max",
    "mean_return",
    "mean_final_goal_distance",
    "mean_time_to_success",
    "num_timesteps_min",
    "num_timesteps_max",
]


def result(tag: str = "step2", seed: int = 0, success_rate: float = 0.95, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "schema": SCHEMA,
        "tag": tag,
        "env": "FetchPush-v4",
        "seed": seed,
        "checkpoint": f"runs/{tag}/FetchPush-v4/seed{seed}/final.zip",
        "num_timesteps": 4_400_000,
        "episodes": 100,
        "successes": round(100 * success_rate),
        "success_rate": success_rate,
        "mean_return": -10.0 + seed,
        "mean_final_goal_distance": 0.02 * (seed + 1),
        "mean_time_to_success": 10.0 + 2 * seed,
        "deterministic": True,
        "versions": {"pixelrl": "0.1.0"},
        "wall_seconds": 12.5,
    }
    data.update(overrides)
    return data


def write(directory: Path, data: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['tag']}_{data['env']}_seed{data['seed']}_eval.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    for seed, rate in enumerate([0.9, 0.95, 1.0]):
        write(out, result("step2", seed, rate))
    write(out, result("step0", 0, 0.05, mean_time_to_success=None))
    write(out, result("step0", 1, 0.03, mean_time_to_success=None, num_timesteps=3_000_000))
    (out / "notes.json").write_text("{}")  # not an *_eval.json: ignored
    return out


def test_load_results_reads_a_directory_and_files_once(results_dir):
    results = load_results([results_dir, results_dir / "step2_FetchPush-v4_seed0_eval.json"])
    assert len(results) == 5
    assert [(r["tag"], r["seed"]) for r in results] == [
        ("step0", 0),
        ("step0", 1),
        ("step2", 0),
        ("step2", 1),
        ("step2", 2),
    ]
    assert results[0]["path"].endswith("step0_FetchPush-v4_seed0_eval.json")
    assert results[0]["mean_time_to_success"] is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schema": "pixelrl.eval/2"}, r"schema is 'pixelrl\.eval/2', expected 'pixelrl\.eval/1'"),
        ({"schema": None}, r"schema is None, expected 'pixelrl\.eval/1'"),
        ({"seed": "0"}, r"'seed' is '0', expected int"),
        ({"success_rate": True}, r"'success_rate' is True, expected int or float"),
        ({"success_rate": 1.5}, r"success_rate 1\.5 is outside \[0, 1\]"),
        ({"mean_time_to_success": "n/a"}, r"'mean_time_to_success' is 'n/a', expected int or float or null"),
    ],
)
def test_load_results_schema_errors_name_the_file(tmp_path, overrides, message):
    path = write(tmp_path, {**result(), **overrides})
    with pytest.raises(ValueError, match=rf"seed0_eval\.json: {message}"):
        load_results([path])


def test_load_results_missing_keys_are_listed(tmp_path):
    data = result()
    del data["episodes"], data["mean_return"]
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=r"seed0_eval\.json: missing keys \['episodes', 'mean_return'\]"):
        load_results([path])


def test_load_results_other_errors(tmp_path):
    with pytest.raises(ValueError, match=r"nope: no such file or directory"):
        load_results([tmp_path / "nope"])
    with pytest.raises(ValueError, match=r"no \*_eval\.json files"):
        load_results([tmp_path])
    bad = tmp_path / "x_eval.json"
    bad.write_text('{"schema": ')
    with pytest.raises(ValueError, match=r"x_eval\.json: not valid JSON"):
        load_results([bad])
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"x_eval\.json: expected a JSON object, got list"):
        load_results([bad])
    first = write(tmp_path / "a", result())
    second = write(tmp_path / "b", result())
    with pytest.raises(ValueError, match=r"both hold tag 'step2', env 'FetchPush-v4', seed 0"):
        load_results([first, second])


def test_compare_table_aggregates_seeds_exactly(results_dir):
    rows = compare_table(load_results([results_dir]))
    assert [(r["tag"], r["n_seeds"]) for r in rows] == [("step0", 2), ("step2", 3)]
    step0, step2 = rows
    assert list(step2) == TAG_COLUMNS
    assert step2["seeds"] == "0,1,2" and step2["episodes"] == 300
    assert step2["success_mean"] == pytest.approx(0.95)
    assert step2["success_std"] == pytest.approx(0.05)  # sample std, ddof=1
    assert (step2["success_min"], step2["success_max"]) == (0.9, 1.0)
    assert step2["mean_return"] == pytest.approx(-9.0)
    assert step2["mean_final_goal_distance"] == pytest.approx(0.04)
    assert step2["mean_time_to_success"] == pytest.approx(12.0)
    assert step0["success_mean"] == pytest.approx(0.04)
    assert step0["mean_time_to_success"] is None
    assert (step0["num_timesteps_min"], step0["num_timesteps_max"]) == (3_000_000, 4_400_000)


def test_compare_table_single_seed_has_no_std_and_per_run_rows(results_dir):
    one = compare_table(load_results([results_dir / "step2_FetchPush-v4_seed1_eval.json"]))
    assert one[0]["n_seeds"] == 1 and one[0]["success_std"] is None
    runs = compare_table(load_results([results_dir]), group_by_tag=False)
    assert [(r["tag"], r["seed"], r["success_rate"]) for r in runs] == [
        ("step0", 0, 0.05),
        ("step0", 1, 0.03),
        ("step2", 0, 0.9),
        ("step2", 1, 0.95),
        ("step2", 2, 1.0),
    ]
    assert runs[2]["successes"] == 90 and runs[2]["deterministic"] is True


def test_format_table_markdown_is_a_parseable_table(results_dir):
    rows = compare_table(load_results([results_dir]))
    text = format_table(rows, "markdown")
    lines = text.splitlines()
    assert len(lines) == 4 and text.endswith("\n")
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert split[0] == TAG_COLUMNS
    assert set(split[1]) == {"---"}
    step2 = dict(zip(split[0], split[3], strict=True))
    assert step2["tag"] == "step2" and step2["success_mean"] == "0.95" and step2["success_std"] == "0.05"
    step0 = dict(zip(split[0], split[2], strict=True))
    assert step0["mean_time_to_success"] == ""  # None is an empty cell
    assert format_table([{"note": "a|b"}], "markdown").splitlines()[2] == "| a\\|b |"


def test_format_table_csv_round_trips_at_full_precision(results_dir):
    rows = compare_table(load_results([results_dir]))
    parsed = list(csv.DictReader(io.StringIO(format_table(rows, "csv"))))
    assert len(parsed) == 2 and list(parsed[0]) == TAG_COLUMNS
    assert float(parsed[1]["success_mean"]) == rows[1]["success_mean"]
    assert float(parsed[1]["success_std"]) == rows[1]["success_std"]
    assert parsed[1]["seeds"] == "0,1,2" and parsed[0]["mean_time_to_success"] == ""


def test_format_table_json_is_strict_and_keeps_types(results_dir):
    rows = compare_table(load_results([results_dir]), group_by_tag=False)
    parsed = json.loads(format_table(rows, "json"))
    assert parsed == [dict(r) for r in rows]
    nan_row = json.loads(format_table([{"x": math.nan, "ys": [1.0, math.inf]}], "json"))
    assert nan_row == [{"x": None, "ys": [1.0, None]}]


def test_format_table_empty_rows_and_unknown_format():
    assert format_table([], "markdown") == "" and format_table([], "csv") == ""
    assert json.loads(format_table([], "json")) == []
    with pytest.raises(ValueError, match="format 'html' is not supported; use 'markdown', 'csv' or 'json'"):
        format_table([{"a": 1}], "html")  # type: ignore[arg-type]


def test_a_run_evaluated_at_several_checkpoints_counts_once_with_its_latest_result(tmp_path):
    periodic = write(tmp_path / "p", result(num_timesteps=1000, success_rate=0.2, successes=2))
    final = write(tmp_path / "f", result(num_timesteps=4000))
    rows = compare_table(load_results([periodic, final]))
    assert rows[0]["n_seeds"] == 1 and rows[0]["success_mean"] == 0.95


def test_results_that_are_not_results_are_refused_with_the_file_name(tmp_path):
    binary = tmp_path / "x_eval.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match=r"x_eval\.json: not valid JSON"):
        load_results([binary])
    negative = write(tmp_path / "n", result(episodes=-3, successes=0, success_rate=0.0))
    with pytest.raises(ValueError, match="episodes must be positive"):
        load_results([negative])
