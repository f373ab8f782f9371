"""The block protocol by which `side_by_side.py` times two benchmark processes in turn.

A process run with `--blocks=N` (`train_step.py`, `reference_phase1.py`) prints `ready` once its
warmup is done, then, for each line it reads on standard input, times one block of its steps and
prints `block S s`. Standard library only: it runs in the reference's PyTorch environment as well
as in fgbg's.
"""

import re
import sys

READY = "ready"
BLOCK = re.compile(r"^block ([0-9.]+) s$")


def run(timed_block, blocks):
    """Seconds of `blocks` calls of `timed_block` (which times one block of steps and returns its
    seconds), each when a line arrives on standard input, with `ready` before the first and
    `block S s` after each; with `blocks` 0, of one call at once."""
    if not blocks:
        return timed_block()
    print(READY, flush=True)
    seconds = 0.0
    for _ in range(blocks):
        if not sys.stdin.readline():
            raise SystemExit("standard input closed before the last block")
        block = timed_block()
        print(f"block {block:.6f} s", flush=True)
        seconds += block
    return seconds
