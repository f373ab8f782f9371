"""The reference implementation's Phase I training step, timed as `train_step.py` times fgbg's.

Runs under PyTorch, not in fgbg's environment: `side_by_side.py` starts it with the Python of
an environment that has CPU torch, numpy and einops, and with `--reference` pointing at a
checkout of the authors' code (Gabriel-Huang/Layered-Controllable-Video-Generation). The
networks are the reference's own modules, built with the sizes given: its mask network
(`modules/vqvae/networks.ResnetGenerator`, as its model builds it: batch normalisation, two
stride-2 stages), its VQ-VAE encoder and decoder (`modules/autoencoder/model.py`, which always
have a middle attention block) and quantizer (`VectorQuantizer2`). The step is the reference's
Phase I (`models/vqargan_automask.py`): the mask m = M(f_t), the foreground f_t * m and the
background f_t * (1 - m) each encoded and quantized, their sum decoded into f_hat; the loss is
the L1 distance to f_{t+1}, the codebook loss, and the mask losses of its Phase I (the
background term, binarization, sparsity against the thresholded frame difference); one Adam
update (betas 0.5, 0.9, as the reference). No discriminator, as in fgbg's Phase I.

    python benchmarks/reference_phase1.py --reference=DIR --precision=bfloat16

Prints `throughput  N pairs/s` (the line `side_by_side.py` reads) and the settings.
"""

import argparse
import os
import sys
import time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="Checkout of the authors' code.")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=8, help="Pairs per batch.")
    parser.add_argument("--mask_ngf", type=int, default=32)
    parser.add_argument("--mask_res_blocks", type=int, default=6)
    parser.add_argument(
        "--generator_filters", default="32,64,64", help="VQ-VAE widths, one per level."
    )
    parser.add_argument("--generator_res_blocks", type=int, default=1)
    parser.add_argument("--num_embeddings", type=int, default=256)
    parser.add_argument("--embedding_dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--blocks",
        type=int,
        default=0,
        help="N > 0: after `ready`, N blocks of --steps steps, one per line of standard input.",
    )
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default.")
    return parser.parse_args(argv)


def build(args):
    """The reference's networks and the parameters its optimizer updates."""
    import torch

    sys.path.insert(0, os.path.abspath(args.reference))
    from modules.autoencoder.model import Decoder, Encoder
    from modules.vqvae import networks
    from modules.vqvae.quantize import VectorQuantizer2

    filters = [int(f) for f in args.generator_filters.split(",")]
    base = filters[0]
    if any(f % base for f in filters):
        raise SystemExit(
            f"--generator_filters={args.generator_filters}: each a multiple of the first"
        )
    vq = dict(
        ch=base,
        out_ch=3,
        ch_mult=[f // base for f in filters],
        num_res_blocks=args.generator_res_blocks,
        attn_resolutions=[],
        in_channels=3,
        resolution=args.image_size,
        z_channels=args.embedding_dim,
        double_z=False,
        dropout=0.0,
    )
    nets = torch.nn.ModuleDict(
        {
            "mask": networks.ResnetGenerator(3, 1, args.mask_ngf, n_blocks=args.mask_res_blocks),
            "encoder": Encoder(**vq),
            "decoder": Decoder(**vq),
            "quantize": VectorQuantizer2(args.num_embeddings, args.embedding_dim, beta=0.25),
            "quant_conv": torch.nn.Conv2d(args.embedding_dim, args.embedding_dim, 1),
            "post_quant_conv": torch.nn.Conv2d(args.embedding_dim, args.embedding_dim, 1),
        }
    )
    return nets


def phase1_loss(nets, frame, next_frame):
    """The reference's Phase I objective on a batch of pairs `[B, 3, H, W]` in [-1, 1]."""
    import torch

    mask = nets["mask"](frame)
    streams = torch.cat([frame * mask, frame * (1 - mask)], 0)
    quantized, codebook_loss, _ = nets["quantize"](nets["quant_conv"](nets["encoder"](streams)))
    foreground, background = quantized.chunk(2)
    prediction = nets["decoder"](nets["post_quant_conv"](foreground + background))
    reconstruction = (prediction.float() - next_frame).abs().mean()
    still = 1 - mask.float()
    background_loss = 10.0 * (next_frame * still - frame * still).abs().mean()
    binarization = torch.minimum(mask.float(), still).mean()
    gray = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    changed = (((frame - next_frame) * gray).sum(1, keepdim=True).abs() > 0.04).float()
    sparsity = torch.relu(mask.float().mean((1, 2, 3)) - changed.mean((1, 2, 3))).mean()
    return reconstruction + codebook_loss.float() + background_loss + binarization + 2 * sparsity


def main(argv=None):
    args = parse_args(argv)
    import torch

    # The repository's root, for the block protocol that fgbg's benchmark shares (standard
    # library only; fgbg itself is not installed in this environment).
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks import timed_blocks

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = build(args)
    optimizer = torch.optim.Adam(nets.parameters(), lr=1e-4, betas=(0.5, 0.9))
    size = args.image_size
    batches = [torch.rand(2, args.pairs, 3, size, size) * 2 - 1 for _ in range(4)]

    def step(i):
        frame, next_frame = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
            loss = phase1_loss(nets, frame, next_frame)
        loss.backward()
        optimizer.step()
        return loss

    for i in range(args.warmup):
        step(i)

    def timed_block():
        start = time.perf_counter()
        for i in range(args.steps):
            loss = step(i)
        float(loss.detach())
        return time.perf_counter() - start

    seconds = timed_blocks.run(timed_block, args.blocks)
    steps = args.steps * max(args.blocks, 1)
    parameters = sum(p.numel() for p in nets.parameters())
    print(f"implementation    reference (PyTorch {torch.__version__})")
    print(f"precision         {args.precision}")
    print(f"threads           {torch.get_num_threads()}")
    print(f"image size        {size}")
    print(f"pairs per batch   {args.pairs}")
    print(f"parameters        {parameters:,}")
    print(f"step time         {1000 * seconds / steps:.1f} ms")
    print(f"throughput        {steps * args.pairs / seconds:.1f} pairs/s")


if __name__ == "__main__":
    main()
