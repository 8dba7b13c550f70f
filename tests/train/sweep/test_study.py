"""Studies read from files and flags, checked whole before Ray starts."""

from __future__ import annotations

import builtins
import json

import pytest

from pixelrl.train.cli import main
from pixelrl.train.config import ConfigError
from pixelrl.train.sweep.command import SweepArgs, run_sweep
from pixelrl.train.sweep.study import Study, study_from


def _file(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_is_the_product_of_its_values_and_named_configurations_join_it(tmp_path):
    path = _file(tmp_path, 'seeds = [0, 1]\n[base]\nenv = "pixelrl/PointReach-v0"\n[grid]\nn_steps = [1, 3]\n'
                 'learning_rate = [1e-3, 3e-4]\n[configurations.slow]\nlearning_rate = 1e-4\n')  # fmt: skip
    study = study_from(path)
    assert study.name == "s" and study.seeds == (0, 1)
    assert list(study.configurations) == [
        "n_steps-1_learning_rate-0.001", "n_steps-1_learning_rate-0.0003", "n_steps-3_learning_rate-0.001",
        "n_steps-3_learning_rate-0.0003", "slow",
    ]  # fmt: skip
    assert len(study.trials()) == 10
    config = study.config("n_steps-3_learning_rate-0.0003", 1, tmp_path)
    assert (config.n_steps, config.learning_rate, config.seed) == (3, 3e-4, 1)
    assert config.tag == "n_steps-3_learning_rate-0.0003"
    assert config.out_dir == tmp_path and config.env == "pixelrl/PointReach-v0"


def test_flags_override_the_file_and_a_study_without_a_grid_runs_its_seeds(tmp_path):
    path = _file(tmp_path, 'seeds = [0]\n[base]\nenv = "pixelrl/PointReach-v0"\nbatch_size = 64\n')
    study = study_from(path, base={"batch_size": 32}, seeds=[3, 4], resources={"concurrency": 2})
    assert list(study.configurations) == ["base"] and study.seeds == (3, 4) and study.resources.concurrency == 2
    assert study.config("base", 3, tmp_path).batch_size == 32


def test_the_saved_study_round_trips(tmp_path):
    study = study_from(_file(tmp_path, '[grid]\ngamma = [0.9, 0.95]\n[base]\nenv = "pixelrl/PointReach-v0"\n'))
    assert Study.from_dict(json.loads(json.dumps(study.to_dict())), "x") == study


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nlearning_rate = 0.1\n", "grid learning_rate must be a non-empty list"),
        ("[grids]\nx = [1]\n", "unknown sections"),
        ('[base]\nenv = "pixelrl/PointReach-v0"\n[grid]\nbatch_size = [64, -1]\n', "--batch-size must be positive"),
        ('[base]\nenv = "pixelrl/PointReach-v0"\n[grid]\nlerning_rate = [1e-3]\n', "unknown setting 'lerning_rate'"),
        ('[base]\nenv = "Nope-v0"\n', "Unknown env 'Nope-v0'"),
        ('seeds = [1, 1]\n[base]\nenv = "pixelrl/PointReach-v0"\n', "distinct seeds"),
        ('[base]\nenv = "pixelrl/PointReach-v0"\n[resources]\nconcurrency = 0\n', "concurrency must be a positive"),
        ('[base]\nenv = "pixelrl/PointReach-v0"\n[resources]\ngpus = 1\n', "use concurrency, cpus_per_trial"),
        ('[configurations."a b"]\nseed = 1\n', "configuration name 'a b'"),
        ("[search]\ntrials = 4\nspace = { learning_rate = { low = 1e-3, high = 1e-4 } }\n", "needs numbers low < high"),
    ],
)
def test_bad_studies_exit_2_before_ray_starts(tmp_path, capsys, monkeypatch, text, message):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise AssertionError("Ray was imported for a study that is refused")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["sweep", "--study", str(_file(tmp_path, text)), "--out-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_without_ray_the_sweep_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = _file(tmp_path, '[base]\nenv = "pixelrl/PointReach-v0"\n')
    assert main(["sweep", "--study", str(path), "--out-dir", str(tmp_path / "out")]) == 2
    assert 'pip install "pixelrl[sweep]"' in capsys.readouterr().err


def test_resume_refuses_a_changed_study_and_a_second_study_in_one_folder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.json").write_text(json.dumps(study_from(None, base={"env": "pixelrl/PointReach-v0"}).to_dict()))
    assert main(["sweep", "--out-dir", str(out), "--resume", "--grid", "n_steps=1,3"]) == 2
    assert "--resume continues the saved study" in capsys.readouterr().err
    assert main(["sweep", "--set", "env=pixelrl/PointReach-v0", "--out-dir", str(out)]) == 2
    assert "already holds a study" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="does not exist; start the study without --resume"):
        run_sweep(SweepArgs(out_dir=tmp_path / "empty", resume=True))
