"""fgbg against the authors' PyTorch code: one Phase I training step on the same networks.

    python benchmarks/side_by_side.py --reference=DIR --torch_python=VENV/bin/python

`DIR` is a checkout of Gabriel-Huang/Layered-Controllable-Video-Generation and `VENV` an
environment outside fgbg's with CPU torch, numpy and einops (docs/results/distribution.md,
"Against the authors' implementation", says how to make both). Each run starts fgbg
(`train_step.py`) and the reference (`reference_phase1.py`) in processes of their own and times
them in alternation, `--rounds` blocks of `--steps` steps each, one implementation at a time and
the order flipped every round, so that both meet the same machine when its speed drifts; every
other run starts the reference first (`timed_blocks.alternate`). The networks are matched: the
mask network (`--mask_ngf` wide, `--mask_res_blocks` residual blocks, two stride-2 stages), a
VQ-VAE (`--generator_filters` per level, `--generator_res_blocks` per level, `--num_embeddings`
codes of `--embedding_dim`), `--pairs` pairs of `--image_size` frames per step. It prints each
run's pairs/s and fgbg's lead, in each precision asked for (`float32`, and `bfloat16`: fgbg's
`mixed_bfloat16` policy against the reference under `torch.autocast`).
"""

# Before TensorFlow: fgbg_keras turns its oneDNN kernels on (fgbg_keras/__init__.py).
import fgbg_keras  # noqa: F401  # isort: skip

import functools
import os
import sys

from absl import app, flags

from benchmarks import timed_blocks
from fgbg_keras import hardware

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))
# fgbg's settings for the choices where the reference computes differently from fgbg's
# defaults, so that both run the same step: the reference's Phase I runs M on f_t alone and cuts
# L_bg with M(f_t) (fgbg's default runs M on both frames of a pair for the union of their
# masks); its M normalises by batch, downsamples by zero-padded convolutions and upsamples by
# transposed ones (fgbg's default: instance normalisation, reflection padding and resizing);
# its VQ-VAE pads its convolutions with zeros (fgbg's default: reflection), normalises 32
# groups (fgbg's default: 8) and encodes the two streams cut by the mask, 3 channels each
# (fgbg's default adds the target mask as a 4th channel).
REFERENCE_CHOICES = [
    "--bg_mask=current",
    "--mask_norm=batch",
    "--mask_resampling=transposed",
    "--generator_padding=zero",
    "--generator_norm_groups=32",
    "--condition=split",
]
# fgbg's precision policy for each precision the reference runs under.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def define_flags():
    flags.DEFINE_string("reference", None, "Checkout of the authors' code (its `modules/`).")
    flags.DEFINE_string(
        "torch_python", None, "Python of an environment with CPU torch, numpy and einops."
    )
    flags.DEFINE_list("precisions", list(PRECISIONS), f"Any of {list(PRECISIONS)}.")
    flags.DEFINE_bool(
        "reference_choices",
        True,
        f"Run fgbg with the reference's choices ({' '.join(REFERENCE_CHOICES)}); with "
        "--noreference_choices, with fgbg's defaults (more work per step).",
    )
    timed_blocks.define_flags("implementation")
    flags.DEFINE_integer("image_size", 64, "Frame size.")
    flags.DEFINE_integer("pairs", 8, "Pairs of frames per step.")
    flags.DEFINE_integer("mask_ngf", 32, "Width of the mask network's stem.")
    flags.DEFINE_integer("mask_res_blocks", 6, "Residual blocks of the mask network.")
    flags.DEFINE_list("generator_filters", ["32", "64", "64"], "VQ-VAE widths, one per level.")
    flags.DEFINE_integer("generator_res_blocks", 1, "VQ-VAE residual blocks per level.")
    flags.DEFINE_integer("num_embeddings", 256, "Codebook size.")
    flags.DEFINE_integer("embedding_dim", 64, "Code dimension.")
    flags.mark_flags_as_required(["reference", "torch_python"])


def shared_args():
    """The network, frame size and timing flags, the same for both implementations."""
    return [
        f"--image_size={FLAGS.image_size}",
        f"--mask_ngf={FLAGS.mask_ngf}",
        f"--mask_res_blocks={FLAGS.mask_res_blocks}",
        f"--generator_filters={','.join(FLAGS.generator_filters)}",
        f"--generator_res_blocks={FLAGS.generator_res_blocks}",
        f"--num_embeddings={FLAGS.num_embeddings}",
        f"--embedding_dim={FLAGS.embedding_dim}",
        *timed_blocks.timing_args(),
    ]


def commands(precision):
    """fgbg's and the reference's command lines for one run in `precision`."""
    fgbg = [
        sys.executable,
        os.path.join(HERE, "train_step.py"),
        "--phase=1",
        "--generator=vqvae",
        f"--clips_per_batch={FLAGS.pairs}",
        "--frames_per_clip=2",
        f"--precision={PRECISIONS[precision]}",
        *shared_args(),
        *(REFERENCE_CHOICES if FLAGS.reference_choices else []),
    ]
    reference = [
        FLAGS.torch_python,
        os.path.join(HERE, "reference_phase1.py"),
        f"--reference={FLAGS.reference}",
        f"--pairs={FLAGS.pairs}",
        f"--precision={precision}",
        *shared_args(),
    ]
    return {"fgbg": fgbg, "reference": reference}


def print_run(precision, run_index, rates, lead):
    print(
        f"{precision:10s} {run_index + 1:3d} {rates['fgbg']:13.1f} {rates['reference']:10.1f} "
        f"{lead:9.2f}x",
        flush=True,
    )


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.precisions) - set(PRECISIONS))
    if unknown:
        raise app.UsageError(f"--precisions: {unknown} not among {list(PRECISIONS)}")
    if not os.path.isdir(os.path.join(FLAGS.reference, "modules")):
        raise app.UsageError(f"--reference={FLAGS.reference}: no modules/ folder there")
    print(f"cpu     {hardware.cpu().describe()}")
    print(
        f"step    Phase I, {FLAGS.pairs} pairs of {FLAGS.image_size}x{FLAGS.image_size}, "
        f"{FLAGS.rounds} x {FLAGS.steps} timed steps of each per run, alternated"
    )
    choices = " ".join(REFERENCE_CHOICES) if FLAGS.reference_choices else "its defaults"
    print(f"fgbg    {choices}")
    print(
        f"{'precision':10s} {'run':>3s} {'fgbg pairs/s':>13s} {'reference':>10s} {'fgbg lead':>10s}"
    )
    for precision in FLAGS.precisions:
        median = timed_blocks.median_ratio(
            commands(precision),
            "fgbg",
            "reference",
            FLAGS.runs,
            FLAGS.rounds,
            functools.partial(print_run, precision),
        )
        print(f"{precision:10s} median lead {median:.2f}x", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
