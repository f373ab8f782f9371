"""The config sections: every field carries the help text of its flag and its choices, which
validation checks by the flag's name."""

import dataclasses

import pytest

from fgbg_common.options import Options, option
from fgbg_keras import config as fgbg_config
from fgbg_keras.config import ModelConfig, RunConfig


def test_every_field_has_its_help_and_a_field_without_one_is_refused():
    for _, field in RunConfig().fields():
        assert len(field.metadata["help"]) > 10, field.name
    with pytest.raises(TypeError, match="Bad.size has no help text"):

        @dataclasses.dataclass
        class Bad(Options):
            size: int = 3

    @dataclasses.dataclass
    class Good(Options):
        size: int = option(3, "A size.", choices=(3, 4))

    with pytest.raises(ValueError, match=r"--size=5: must be one of \(3, 4\)"):
        Good(size=5).validate(None)


def test_choices_are_checked_by_the_flag_name():
    with pytest.raises(
        ValueError, match=r"--quantize='both': must be one of \('joint', 'separate'\)"
    ):
        RunConfig(model=ModelConfig(quantize="both")).validate()
    config = RunConfig()
    config.loss.spar_schedule = "sometimes"
    with pytest.raises(ValueError, match="--spar_schedule='sometimes'"):
        config.validate()
    config = RunConfig()
    config.phase_two.gan_loss = "wasserstein"
    config.validate()  # a phase that does not use the section does not check it
    with pytest.raises(ValueError, match="--gan_loss='wasserstein'"):
        config.validate(("phase_two",))
    config = RunConfig()
    config.phase_two.train_rollout = True
    config.model.generator = "vqvae"
    with pytest.raises(ValueError, match="--train_rollout=True: needs --generator=unet"):
        config.validate(("phase_two",))
    config.model.generator = "unet"
    config.validate(("phase_two",))
    config.phase_two.train_rollout = False
    for name in ("unet_first_frame", "unet_previous_frame"):
        config.model.unet_first_frame = config.model.unet_previous_frame = False
        setattr(config.model, name, True)
        with pytest.raises(ValueError, match=f"--{name}=True: needs --train_rollout"):
            config.validate(("phase_two",))


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"long_windows_from": 2000}, "--long_windows_from=2000: must be 0 .off. or between 0"),
        ({"long_windows_from": 25}, "--long_windows_from=25: must be a multiple of --log_every"),
        ({"long_windows_from": 500, "long_frames_per_clip": 40}, "--long_frames_per_clip=40"),
        ({"long_windows_from": 500, "long_clips_per_batch": 0}, "--long_clips_per_batch=0"),
    ],
)
def test_a_curriculum_that_cannot_run_is_named(setting, message):
    config = RunConfig()
    for name, value in setting.items():
        setattr(config.train, name, value)
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_window_stretches_start_each_stream_where_the_step_left_it():
    train = RunConfig().train
    train.train_steps, train.frames_per_clip, train.clips_per_batch = 3000, 8, 3
    assert train.window_stretches(500) == [(500, 3000, 8, 3, 1500)]
    train.long_windows_from = 2000
    assert train.window_stretches(0) == [(0, 2000, 8, 3, 0), (2000, 3000, 16, 2, 0)]
    assert train.window_stretches(1500) == [(1500, 2000, 8, 3, 4500), (2000, 3000, 16, 2, 0)]
    assert train.window_stretches(2500) == [(2500, 3000, 16, 2, 1000)]


def test_the_settings_that_only_move_masks_are_marked_beside_their_fields():
    marked = [f.name for _, f in RunConfig().fields() if f.metadata["moving_masks_only"]]
    assert marked == [
        "unet_paste",
        "unet_paste_region",
        "unet_keep_pasted",
        "unet_band_where_moved",
        "unet_region_margin",
        "unet_first_frame",
        "unet_previous_frame",
        "unet_copy_gate",
    ]
    changed = ModelConfig(unet_paste=False, unet_keep_pasted=3, unet_region_margin=2, mask_ngf=8)
    assert changed.networks() == ModelConfig(mask_ngf=8)


def test_fields_are_found_by_their_flag_name():
    config = RunConfig()
    config.set("bg_weight", 7.0)
    config.set("disc_filters", 16)
    assert config.get("bg_weight") == config.loss.bg_weight == 7.0
    assert config.phase_two.disc_filters == 16
    with pytest.raises(ValueError, match="No setting --bg_wieght"):
        config.set("bg_wieght", 1.0)
    assert list(fgbg_config.SECTIONS) == [f.name for f in dataclasses.fields(RunConfig)]
