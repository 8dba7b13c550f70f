from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixelrl.train.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.mujoco
def test_verify_passes_every_check_on_real_rendering(tmp_path):
    out = run_cli("verify", "--json", str(tmp_path / "verify.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[ALL PASS]" in out.stdout
    results = json.loads((tmp_path / "verify.json").read_text())
    assert len(results) == 14
    assert all(r["passed"] for r in results)
    assert sum("[PASS]" in line for line in out.stdout.splitlines()) == 14


@pytest.mark.mujoco
def test_probe_shows_the_three_wirings(tmp_path):
    out = run_cli("probe", "--json", str(tmp_path / "probe.json"))
    assert out.returncode == 0, out.stderr
    rows = {row["wiring"]: row for row in json.loads((tmp_path / "probe.json").read_text())}
    assert rows["sb3-shared"]["membership"]["trained_by"] == "actor"
    assert rows["sb3-separate"]["membership"]["trained_by"] == "actor+critic (separate)"
    assert rows["drqv2"]["membership"]["trained_by"] == "critic"
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith(("sb3-", "drqv2"))}
    assert lines["drqv2"].split()[1] == "0/11"
    assert lines["sb3-shared"].split()[2] == "0/11"


def test_bad_arguments_exit_with_status_2():
    out = run_cli("verify", "--seed", "zero", timeout=60)
    assert out.returncode == 2
    assert "--seed" in out.stderr + out.stdout


def test_unknown_subcommand_exits_with_status_2():
    out = run_cli("fly", timeout=60)
    assert out.returncode == 2
