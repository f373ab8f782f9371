"""The block protocol by which a benchmark times two or more processes in turn.

A process run with `--blocks=N` (`train_step.py`, `reference_phase1.py`) prints `ready` once its
warmup is done, then, for each line it reads on standard input, times one block of its steps and
prints `block S s`, and at its end its `throughput`. `run` is that process's side, `alternate`
the driver's (`side_by_side.py`, `bfloat16_speedup.py`). The module needs the standard library
only (the drivers' `define_flags` imports absl when called): it runs in the reference's PyTorch
environment as well as in fgbg's.
"""

import re
import statistics
import subprocess
import sys
import tempfile
import time

READY = "ready"
BLOCK = re.compile(r"^block ([0-9.]+) s$")
THROUGHPUT = re.compile(r"^throughput\s+([0-9.]+) pairs/s", re.MULTILINE)
# Seconds between two blocks, for the threads of the process that ran the last one to go idle.
SETTLE_SECONDS = 0.2


def define_flags(compared):
    """The timing flags of a benchmark that alternates processes (absl, imported here: the
    processes' side runs without it); `compared` names what they run, as "implementation"."""
    from absl import flags

    flags.DEFINE_integer(
        "runs",
        4,
        f"Runs, each with a fresh process per {compared}; each {compared} starts first in half "
        "of them (`timed_blocks.alternate`).",
    )
    flags.DEFINE_integer("rounds", 4, f"Timed blocks of each {compared} in each run.")
    flags.DEFINE_integer("steps", 10, "Steps per timed block.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps before timing.")


def timing_args():
    """The benchmark process's flags for the timing flags of `define_flags`."""
    from absl import flags

    values = flags.FLAGS
    return [f"--steps={values.steps}", f"--warmup={values.warmup}", f"--blocks={values.rounds}"]


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


class Timer:
    """One benchmark process (`--blocks`), driven block by block."""

    def __init__(self, name, command):
        self.name = name
        self.command = command
        # Kept as long as the process, for the message if it fails; `close` closes it.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self._read_until(lambda line: line == READY)

    def block(self):
        """Times one block (the process sums its blocks' seconds for `finish`)."""
        self._process.stdin.write("go\n")
        self._process.stdin.flush()
        self._read_until(BLOCK.match)

    def finish(self):
        """Waits for the process to end; its pairs/s over all its blocks."""
        self._process.stdin.close()
        rest = self._process.stdout.read()
        found = THROUGHPUT.search(rest)
        if self._process.wait() or not found:
            self._fail()
        return float(found.group(1))

    def close(self):
        """Ends the process if it still runs."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stderr.close()

    def _read_until(self, wanted):
        for line in self._process.stdout:
            if wanted(line.strip()):
                return line.strip()
        self._fail()

    def _fail(self):
        self._process.kill()
        self._process.wait()
        self._stderr.seek(0)
        raise SystemExit(
            f"the {self.name} benchmark failed (exit {self._process.returncode}): "
            f"{' '.join(self.command)}\n{self._stderr.read()[-3000:]}"
        )


def alternate(commands, rounds, run_index=0):
    """Starts a `Timer` per command, times `rounds` blocks of each in alternation; each one's
    pairs/s over its blocks.

    Of two identical processes, the one started second has run 7% to 14% faster here (a 2-core
    Xeon, both precisions), so odd `run_index`es start the commands, and begin each round, in the
    reverse order: an even number of runs gives each command each place equally often.
    """
    names = list(commands)[:: -1 if run_index % 2 else 1]
    timers = []
    try:
        for name in names:
            timers.append(Timer(name, commands[name]))
        for round_ in range(rounds):
            for timer in timers if round_ % 2 == 0 else reversed(timers):
                time.sleep(SETTLE_SECONDS)
                timer.block()
        return {timer.name: timer.finish() for timer in timers}
    finally:
        for timer in timers:
            timer.close()


def median_ratio(commands, numerator, denominator, runs, rounds, report):
    """Times `commands` by `alternate` in `runs` runs and, after each, calls
    `report(run_index, rates, ratio)` with its pairs/s by name and the ratio of the
    `numerator` command's to the `denominator`'s; the median of the ratios."""
    ratios = []
    for run_index in range(runs):
        rates = alternate(commands, rounds, run_index)
        ratios.append(rates[numerator] / rates[denominator])
        report(run_index, rates, ratios[-1])
    return statistics.median(ratios)
