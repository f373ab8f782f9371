"""The options of `--data` (`DataOptions`): which data a run trains and evaluates on, and how
much of it. The kinds `--data` takes are the registry of `data_pipelines.datasets`."""

import dataclasses

from data_pipelines import datasets
from fgbg_common.options import Options, option


@dataclasses.dataclass
class DataOptions(Options):
    """Which data (`--data`), where its copies are kept, and how many clips of each split."""

    data: str = option(
        "synthetic",
        datasets.describe()
        + ". Converted data: its train split trains, the first --num_val_clips of its test split "
        "validate, the first --num_test_clips evaluate; mask IoU and control error against "
        "ground truth only where the data has it.",
    )
    tfds_data_dir: str = option(
        "",
        "With --data=tfds:NAME (e.g. bair_robot_pushing_small): the folder holding the copy "
        "`tfds build NAME --data_dir=...` prepared; never downloaded. Needs pip install -e "
        "'.[tfds]'.",
    )
    data_cache_dir: str = option(
        "",
        "With --data=pushing: a folder where rendered splits are kept (about 0.6 MB a clip at "
        "64x64), named by every setting and the renderer's code, so that a later run with the "
        "same settings (Phase II after Phase I, a resumed run) loads them instead of rendering "
        "again; empty: render every time.",
    )
    num_train_clips: int = option(1000, "Synthetic clips in the training split.")
    num_val_clips: int = option(
        16,
        "Clips that validate during training (synthetic: its validation split; converted data: "
        "the first clips of the test split).",
    )
    num_test_clips: int = option(64, "Clips of the test split that the evaluation uses.")
    clip_length: int = option(
        16,
        "Frames per synthetic clip; with converted data, the evaluation uses test clips of at "
        "least this many frames, cut to it.",
    )

    def check(self, config):
        self.at_least(1, "num_train_clips", "num_val_clips", "num_test_clips")
        datasets.parse_data_flag(self.data)
