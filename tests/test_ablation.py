"""The ablation runner: every row of the grid is a config whose networks build; rows of each
kind trained, evaluated and tabulated at a 1-step budget; finished runs are not trained again."""

import json
import os

import pytest

from fgbg_keras import ablation
from fgbg_keras.models import factory
from tests.tiny import tiny_config


def test_the_grid_has_each_ablation_once_relative_to_the_flags():
    config = tiny_config()  # generator vqvae, bg_mask union, controller, separate, channel
    rows = dict(ablation.grid(config))
    assert rows["defaults"] == {}
    assert rows["no L_bg"] == {"bg_weight": 0.0} and rows["no L_bin"] == {"bin_weight": 0.0}
    assert rows["no L_spar"] == {"spar_schedule": "off"}
    assert {"--bg_mask=next", "--bg_mask=current", "--spar_schedule=halving"} <= set(rows)
    assert rows["--generator=unet"] == {"generator": "unet"}
    assert rows["--quantize=joint"] == {"quantize": "joint"}
    assert rows["--condition=split"] == {"condition": "split"}
    assert len(rows) == 10
    config.model.generator = "unet"
    rows = dict(ablation.grid(config))
    assert rows["--generator=vqvae --quantize=joint"] == {"generator": "vqvae", "quantize": "joint"}


def test_row_configs_scale_the_schedules_and_apply_the_change():
    config = tiny_config(train_steps=40, log_every=4, checkpoint_every=8)
    config.loss.spar_target_steps = 20
    row = ablation.row_config(config, {"bg_mask": "next"}, train_steps=10, seed=3)
    assert row.loss.bg_mask == "next" and row.train.seed == 3 and row.train.train_steps == 10
    assert row.loss.spar_target_steps == 5 and row.train.log_every == 2
    assert config.loss.bg_mask == "union"  # the original is untouched


@pytest.mark.parametrize("generator", ["vqvae", "unet"])
def test_every_row_of_the_grid_builds_networks_with_its_change(generator):
    config = tiny_config()
    config.model.generator = generator
    kinds = {"vqvae": "VQFrameGenerator", "unet": "UNetDiffGenerator"}
    for name, changes in ablation.grid(config):
        # row_config validates the row's config (as Phase I does) and raises on a bad one.
        row = ablation.row_config(config, changes, train_steps=1, seed=0)
        _, frame_generator = factory.build_networks(row.model, create_weights=True)
        assert type(frame_generator).__name__ == kinds[row.model.generator], name
        for field in ("quantize", "condition"):  # the generator's own ablations
            if field in changes:
                assert getattr(frame_generator, field) == changes[field], name
        for field, value in changes.items():
            section = row.loss if hasattr(row.loss, field) else row.model
            assert getattr(section, field) == value, (name, field)


def _rows_of_each_kind(grid, config):
    """The defaults and a generator switch with one of the other generator's own ablations:
    one 1-step run of each (a run per row of the whole grid took two minutes of the suite;
    every row's config, the loss section's changes too, validates and builds in the test
    above)."""
    rows = grid(config)
    kinds = ("defaults", "--generator=vqvae --")
    return [next(row for row in rows if row[0].startswith(kind)) for kind in kinds]


@pytest.mark.parametrize("seeds", [[0]])
def test_a_one_step_budget_trains_and_tabulates_each_kind_of_row(tmp_path, seeds, monkeypatch):
    config = tiny_config(num_test_clips=1)
    config.model.generator = "unet"
    full_grid = ablation.grid
    monkeypatch.setattr(ablation, "grid", lambda config: _rows_of_each_kind(full_grid, config))
    assert len(ablation.grid(config)) == 2 < len(full_grid(config))
    monkeypatch.setattr(ablation, "budget_steps", lambda config, minutes: (1, 0.1))
    summary = ablation.run_grid(config, 0.001, seeds, str(tmp_path), rollout_steps=2)
    names = [name for name, _ in ablation.grid(config)]
    assert [row["name"] for row in summary["rows"]] == names
    table = (tmp_path / "ablation.md").read_text()
    for name in names:
        assert f"| {name}" in table, name
    assert "| defaults * |" in table and "1 steps per run" in table
    for row in summary["rows"]:
        for key in ("mask_iou", "psnr", "rollout_psnr", "control_error"):
            assert key in row and f"{key}_std" in row, (row["name"], key)
    assert json.loads((tmp_path / "ablation.json").read_text())["train_steps"] == 1
    # Each run was trained with its row's change, for the budget's step.
    for name, changes in ablation.grid(config):
        saved = json.loads((tmp_path / ablation._slug(name) / "seed0" / "config.json").read_text())
        assert saved["train"]["train_steps"] == 1, name
        for field, value in changes.items():
            section = next(k for k in ("model", "loss") if field in saved[k])
            assert saved[section][field] == value, (name, field)
    # Run again: every run is found finished and nothing is trained.
    marker = tmp_path / "defaults" / "seed0" / "ablation_result.json"
    stamp = os.path.getmtime(marker)
    monkeypatch.setattr(ablation, "budget_steps", lambda config, minutes: (1, 0.1))
    again = ablation.run_grid(config, 0.001, seeds, str(tmp_path), rollout_steps=2)
    assert again["rows"] == summary["rows"] and os.path.getmtime(marker) == stamp


def test_budget_steps_converts_the_measured_step_time(monkeypatch):
    # A clock that advances 0.5 s per reading: each timed step takes 0.5 s.
    clock = iter(range(0, 10**6))
    monkeypatch.setattr(ablation.time, "perf_counter", lambda: 0.5 * next(clock))
    steps, seconds = ablation.budget_steps(tiny_config(), budget_minutes=0.5, measure_steps=10)
    # perf_counter is read twice, around the 10 steps: 0.5 s over 10 steps = 0.05 s per step.
    assert seconds == pytest.approx(0.05) and steps == 600


def test_a_grid_of_another_budget_in_the_same_folder_is_refused(tmp_path):
    (tmp_path / "budget.json").write_text(
        json.dumps({"budget_minutes": 2.0, "train_steps": 10, "seconds_per_step": 0.1})
    )
    with pytest.raises(ValueError, match="--budget_minutes=2.0; use that budget"):
        ablation.run_grid(tiny_config(), 1.0, [0], str(tmp_path))


def test_a_registered_generator_joins_the_grid_with_its_variants(monkeypatch):
    from fgbg_keras.models import generators

    toy = generators.Generator("toy", "a test's", None, {"condition": ("split", "channel")})
    monkeypatch.setitem(generators._GENERATORS, "toy", toy)
    config = tiny_config()  # generator vqvae, condition channel
    rows = dict(ablation.grid(config))
    assert rows["--generator=toy"] == {"generator": "toy"}
    assert rows["--generator=toy --condition=split"] == {"generator": "toy", "condition": "split"}
    assert "--condition=split" in rows and len(rows) == 12
    assert "--generator=vqvae --generator=toy" not in ablation.format_table(
        {"train_steps": 1, "rows": []}, config
    )
