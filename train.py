"""Trains fgbg.

    python train.py --phase=1 --flagfile=configs/synthetic.flags --model_dir=runs/synthetic/phase1
    python train.py --phase=2 --flagfile=configs/synthetic_phase2.flags \
        --init_from=runs/synthetic/phase1 --model_dir=runs/synthetic/phase2

Phase 1 learns the foreground masks and the frame generator together, with no labels, on the
built-in synthetic video set. Phase 2 freezes the mask network and fine-tunes the frame generator
to draw the object where a target mask says, with PatchGAN discriminators; then the object can be
steered (`python -m fgbg_keras.generate`). Run a phase again with the same --model_dir to resume
from its last checkpoint. TensorBoard: `tensorboard --logdir <model_dir>`. Every flag of ours is
listed by `python train.py --helpfull` under this module's name.
"""

import dataclasses
import json
import os
import sys

from absl import app, flags, logging

from fgbg_keras.config import (
    BaselineConfig,
    LossConfig,
    ModelConfig,
    PhaseTwoConfig,
    RunConfig,
    TrainConfig,
)

FLAGS = flags.FLAGS

HELP = {
    # Model.
    "image_size": "Frame height and width in pixels; must be divisible by the networks' "
    "total downsampling.",
    "mask_ngf": "Width of the mask network's stem (paper: 64).",
    "mask_res_blocks": "Residual blocks of the mask network (paper: 9).",
    "mask_downsampling": "Stride-2 stages of the mask network.",
    "generator": "Frame generator: unet (the difference U-Net of the paper's section 3.4: f_hat = "
    "f_t + d inside the masks, f_t outside; the default, measured best in controlled rollouts) "
    "or vqvae (the VQ-VAE of section 3.2).",
    "unet_filters": "unet: width of the U-Net's first level (doubling per level).",
    "unet_max_filters": "unet: the cap on the U-Net's widths.",
    "unet_levels": "unet: stride-2 levels; 0 halves down to the smallest map the image size "
    "allows (8 levels at 256x256, as the paper).",
    "unet_paste": "unet: start from f_t with the foreground copied by whole pixels to the target "
    "mask and the background it uncovers filled in from around it, instead of from f_t (the "
    "paper; --nounet_paste); the U-Net then refines both. No effect in Phase 1, where the masks "
    "do not move.",
    "unet_keep_pasted": "unet with --unet_paste: the U-Net changes only the background the "
    "object uncovered and a band this many pixels wide inside the target mask's edge; the "
    "object's interior stays the exact pasted copy. 0: it changes the whole union of the masks. "
    "No effect in Phase 1.",
    "generator_filters": "Widths of the VQ-VAE encoder levels, comma-separated; one "
    "stride-2 stage between consecutive levels.",
    "generator_res_blocks": "Residual blocks per level of the VQ-VAE encoder and decoder.",
    "num_embeddings": "Codebook size K.",
    "embedding_dim": "Size n_z of each code vector.",
    "quantize": "joint: f_hat = D(q(z_fg + z_bg)) (the draft); separate: D(q(z_fg) + q(z_bg)) "
    "(the reference; the default, measured best for masks on the synthetic set).",
    "condition": "vqvae: split: streams cut by the target mask (the reference); channel: the "
    "target mask is a 4th encoder channel (the default, measured better in rollouts).",
    "vq_ema": "Update the codebook by exponential moving averages instead of gradients.",
    "vq_ema_decay": "Decay of the codebook EMA and of the code-usage statistics.",
    "dead_code_threshold": "Restart codes whose EMA usage falls below this (0 disables).",
    # Losses.
    "reconstruction_weight": "Weight of L1(f_hat, f_{t+1}).",
    "codebook_weight": "Weight of the codebook loss ||sg(z) - z_q||^2.",
    "commitment_beta": "Weight beta of the commitment loss ||z - sg(z_q)||^2.",
    "bg_weight": "l1, weight of the background loss L_bg.",
    "bin_weight": "l3, weight of the binarization loss L_bin.",
    "bg_mask": "Mask of L_bg: next = M(f_{t+1}) (the draft), current = M(f_t) (the "
    "reference), union = max of the two.",
    "two_sided_sparsity": "Penalise |mean(m) - mean(d)| instead of max(mean(m) - mean(d), 0).",
    "diff": "Change map d: gray = |gray(f_{t+1}) - gray(f_t)| > threshold (BT.601); "
    "maxchannel = largest channel difference > threshold.",
    "diff_threshold": "Threshold of the change map d on [-1, 1] frames.",
    "spar_schedule": "Schedule of l2, the sparsity weight: controller (the draft: l2 steers "
    "L_bg/L_spar along a falling target line), halving (the reference: l2 = l1 / r, r halves) or "
    "off (l2 = 0: no sparsity loss, an ablation).",
    "spar_initial_weight": "controller: the initial l2.",
    "spar_target_start": "controller: target L_bg/L_spar ratio at step 0.",
    "spar_target_end": "controller: target ratio from --spar_target_steps on.",
    "spar_target_steps": "controller: steps over which the target falls.",
    "spar_gain": "controller: log-step of the multiplicative update per training step.",
    "spar_start_ratio": "halving: the initial r of l2 = l1 / r.",
    "spar_halve_every": "halving: steps between halvings of r.",
    "spar_min_ratio": "halving: the floor of r.",
    # Training.
    "train_steps": "Total optimizer steps of the phase.",
    "clips_per_batch": "Clips per batch; a batch holds clips_per_batch * (frames_per_clip - 1) "
    "pairs.",
    "frames_per_clip": "Consecutive frames sampled from each clip (paper: 10).",
    "learning_rate": "Adam learning rate (constant, then linear decay to 0).",
    "beta_1": "Adam beta_1.",
    "beta_2": "Adam beta_2 (the reference uses 0.9).",
    "decay_start_fraction": "Fraction of --train_steps before the learning rate starts to decay.",
    "log_every": "Steps between TensorBoard scalars (each is the mean over these steps).",
    "checkpoint_every": "Steps between checkpoints and validation runs.",
    "image_every": "Steps between TensorBoard images of masks and predictions.",
    "keep_checkpoints": "Checkpoints kept on disk.",
    "seed": "Seed of the data, the initial weights and every random choice.",
    "precision": "float32 or mixed_bfloat16 (fast on CPUs with AMX/AVX512-BF16 and on GPUs).",
    "jit_compile": "Compile the train step with XLA.",
    "deterministic": "Enable TensorFlow's op determinism, so two runs with one seed are "
    "identical.",
    "data": "synthetic: the built-in set, generated on the fly. tfrecord:DIR: a folder written by "
    "`python -m data_pipelines.convert`; tfds:NAME: a TFDS-prepared copy in --tfds_data_dir "
    "(its train split trains, the first --num_val_clips of "
    "its test split validate, the first --num_test_clips evaluate; mask IoU and control error "
    "against ground truth only where the data has it).",
    "tfds_data_dir": "With --data=tfds:NAME (e.g. bair_robot_pushing_small): the folder holding "
    "the copy `tfds build NAME --data_dir=...` prepared; never downloaded. Needs pip install -e "
    "'.[tfds]'.",
    "num_train_clips": "Synthetic clips in the training split.",
    "num_val_clips": "Clips that validate during training (synthetic: its validation split; "
    "tfrecord: the first clips of the test split).",
    "num_test_clips": "Clips of the test split that the evaluation uses.",
    "clip_length": "Frames per synthetic clip; with tfrecord data, the evaluation uses test clips "
    "of at least this many frames, cut to it.",
    # Phase II (ignored by Phase I).
    "disc_start": "Phase 2: step at which the discriminators and the GAN loss join; a multiple of "
    "--log_every.",
    "gan_loss": "Phase 2: hinge (the reference) or nonsaturating (the draft's log loss, eq. 9).",
    "gan_weight": "Phase 2: weight of the generator's adversarial loss.",
    "adaptive_gan_weight": "Phase 2: multiply --gan_weight by the VQGAN adaptive weight, the "
    "ratio of the gradient norms of the reconstruction and GAN terms at the generator's last "
    "layer.",
    "disc_filters": "Phase 2: width of the PatchGAN discriminators' first layer (pix2pix: 64).",
    "disc_conditional": "Phase 2: discriminators see concat(f_t, frame) (the draft), not the "
    "frame alone (the reference).",
    "local_disc": "Phase 2: add the local discriminator on a crop around the target mask.",
    "local_crop_size": "Phase 2: side in pixels of the local discriminator's crop.",
    "disc_learning_rate": "Phase 2: the discriminators' learning rate; 0 uses --learning_rate.",
    "fg_region_weight": "Phase 2: weight of L1 inside the target mask.",
    "bg_region_weight": "Phase 2: weight of L1 outside the target mask.",
    "ss_start": "Phase 2: first step of scheduled sampling (-1: half of --train_steps).",
    "ss_initial": "Phase 2: probability of feeding the model its own output at --ss_start.",
    "ss_increment": "Phase 2: rise of that probability every --ss_interval steps (capped at 1).",
    "ss_interval": "Phase 2: steps between rises of the scheduled-sampling probability.",
    "convlstm_filters": "baseline_convlstm: width of the first encoder convolution.",
    "convlstm_lstm_filters": "baseline_convlstm: channels of the ConvLSTM state.",
    "reset_generator_head": "Phase 2, --generator=unet: start the U-Net's last layer at zero, so "
    "Phase 2 starts from the base frame (with --unet_paste: the moved foreground) rather than "
    "from the Phase 1 U-Net, which learned to predict motion it was never told. No effect with "
    "vqvae.",
}

flags.DEFINE_enum(
    "phase",
    "1",
    ["1", "2", "baseline_convlstm"],
    "1: learn masks and the frame generator together. 2: freeze the masks and fine-tune the "
    "generator on target masks, with discriminators (needs --init_from). baseline_convlstm: "
    "train the ConvLSTM baseline on the same data (the data and training flags apply; "
    "evaluate it beside a fgbg run with `python -m fgbg_keras.evaluate --convlstm_dir`).",
)
flags.DEFINE_string(
    "init_from",
    None,
    "Phase 2: the --model_dir of a finished Phase 1 run with the same network flags; its "
    "mask network and frame generator start this run.",
)
flags.DEFINE_string(
    "model_dir",
    None,
    "Directory for checkpoints, TensorBoard logs and flags.json. Re-running with the same "
    "directory resumes.",
)
flags.DEFINE_bool(
    "evaluate",
    True,
    "Evaluate on the test split of --data after training, print the table and write it to "
    "<model_dir>/eval_test.json; after Phase 2 also the 16-step controlled rollouts and "
    "<model_dir>/rollouts_test.gif.",
)


SECTIONS = {
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "phase_two": PhaseTwoConfig,
    "baseline": BaselineConfig,
}


def _define_config_flags():
    for section in SECTIONS.values():
        for field in dataclasses.fields(section):
            default = field.default if field.default is not dataclasses.MISSING else None
            help_text = HELP[field.name]
            if field.type is bool or field.type == "bool":
                flags.DEFINE_bool(field.name, default, help_text)
            elif field.type is int or field.type == "int":
                flags.DEFINE_integer(field.name, default, help_text)
            elif field.type is float or field.type == "float":
                flags.DEFINE_float(field.name, default, help_text)
            elif field.type is tuple or field.type == "tuple":
                flags.DEFINE_list(field.name, [str(v) for v in default], help_text)
            else:
                flags.DEFINE_string(field.name, default, help_text)


_define_config_flags()


def config_from_flags():
    """The `RunConfig` the parsed flags describe (not yet validated)."""

    def section(cls):
        values = {}
        for field in dataclasses.fields(cls):
            value = FLAGS[field.name].value
            if field.type in (tuple, "tuple"):
                try:
                    value = tuple(int(v) for v in value)
                except ValueError:
                    raise ValueError(
                        f"--{field.name}={','.join(value)}: must be comma-separated integers"
                    ) from None
            values[field.name] = value
        return cls(**values)

    return RunConfig(**{name: section(cls) for name, cls in SECTIONS.items()})


def write_flags(model_dir):
    """Writes every flag of ours, resolved, to `<model_dir>/flags.json`."""
    ours = {f.name: f.value for f in FLAGS.get_flags_for_module(sys.argv[0])}
    ours.update({f.name: f.value for f in FLAGS.get_flags_for_module(__name__)})
    with open(os.path.join(model_dir, "flags.json"), "w") as f:
        json.dump(ours, f, indent=2, sort_keys=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from fgbg_keras import evaluate
    from fgbg_keras.training import baseline, loop

    phase = FLAGS.phase if FLAGS.phase == baseline.PHASE else int(FLAGS.phase)
    try:
        config = config_from_flags().validate(phase)
        loop.check_model_dir(FLAGS.model_dir)
        if phase == 2 and not FLAGS.init_from:
            raise ValueError("--init_from is required with --phase=2: the Phase 1 run directory.")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    write_flags(FLAGS.model_dir)
    try:
        if phase == baseline.PHASE:
            baseline.train_baseline(config, FLAGS.model_dir)
        else:
            loop.train_and_evaluate(config, FLAGS.model_dir, phase=phase, init_from=FLAGS.init_from)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    except loop.TrainingDiverged as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")
    if phase == baseline.PHASE:
        sys.stdout.write(
            "Evaluate the baseline beside a fgbg run of the same data and frame size: python -m "
            f"fgbg_keras.evaluate --model_dir=FGBG_RUN --convlstm_dir={FLAGS.model_dir} "
            "--output=REPORT_DIR\n"
        )
    elif FLAGS.evaluate:
        sys.stdout.write(evaluate.evaluate_and_report(FLAGS.model_dir))
    logging.info("Checkpoints: %s", os.path.join(FLAGS.model_dir, loop.CHECKPOINT_DIR))
    sys.stdout.write(
        f"\nCheckpoints: {os.path.join(FLAGS.model_dir, loop.CHECKPOINT_DIR)}\n"
        f"TensorBoard: tensorboard --logdir {FLAGS.model_dir}\n"
    )


if __name__ == "__main__":
    flags.mark_flag_as_required("model_dir")
    app.run(main)
