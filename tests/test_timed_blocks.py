import os
import sys

import pytest

from benchmarks import timed_blocks

# A stand-in for a benchmark process: the block protocol of `timed_blocks`, each block taking
# `seconds`; its pairs/s from the blocks it ran. Its argv: seconds, blocks, a log file (which
# gets its process id in LOG.pid, then `start-NAME` and the name for each block), a name.
FAKE = """
import os, sys, time
from benchmarks import timed_blocks
seconds, blocks, log = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(log + ".pid", "w") as f:
    f.write(str(os.getpid()))
with open(log, "a") as f:
    f.write("start-" + sys.argv[4] + "\\n")
print("tracing...", flush=True)

def timed_block():
    with open(log, "a") as f:
        f.write(sys.argv[4] + "\\n")
    time.sleep(seconds)
    return seconds

total = timed_blocks.run(timed_block, blocks)
print(f"throughput   {8 * max(blocks, 1) / total:.1f} pairs/s")
"""


def test_without_blocks_the_protocol_times_one_block_at_once(capsys):
    assert timed_blocks.run(lambda: 0.25, 0) == 0.25
    assert capsys.readouterr().out == ""


def test_alternate_times_the_blocks_in_turn_and_reads_each_ones_pairs_per_second(tmp_path):
    log = tmp_path / "order.txt"

    def fake(name, seconds):
        return [sys.executable, "-c", FAKE, str(seconds), "3", str(log), name]

    commands = {"fgbg": fake("fgbg", 0.05), "reference": fake("ref", 0.1)}
    rates = timed_blocks.alternate(commands, 3)
    assert rates == {"fgbg": 160.0, "reference": 80.0}
    # Started in turn; one block at a time, the first started first in odd rounds and last in
    # even ones.
    order = ["fgbg", "ref", "ref", "fgbg", "fgbg", "ref"]
    assert log.read_text().split() == ["start-fgbg", "start-ref", *order]
    # An odd run starts them, and begins every round, the other way round.
    log.unlink()
    assert timed_blocks.alternate(commands, 3, run_index=1) == rates
    assert log.read_text().split() == ["start-ref", "start-fgbg", *order[::-1]]


def test_median_ratio_reports_every_run_and_alternates_the_start(tmp_path):
    log = tmp_path / "order.txt"

    def fake(name, seconds):
        return [sys.executable, "-c", FAKE, str(seconds), "1", str(log), name]

    reports = []
    commands = {"slow": fake("slow", 0.1), "fast": fake("fast", 0.05)}
    median = timed_blocks.median_ratio(
        commands, "fast", "slow", 3, 1, lambda *report: reports.append(report)
    )
    assert median == 2.0
    assert [(run, ratio) for run, _, ratio in reports] == [(0, 2.0), (1, 2.0), (2, 2.0)]
    assert reports[0][1] == {"slow": 80.0, "fast": 160.0}
    starts = [line for line in log.read_text().split() if line.startswith("start-")]
    assert starts == ["start-slow", "start-fast", "start-fast", "start-slow"] + [
        "start-slow",
        "start-fast",
    ]


def test_a_failed_benchmark_is_named_with_its_error_and_the_other_is_stopped(tmp_path):
    fails = [sys.executable, "-c", "import sys; sys.exit('no torch here')"]
    waiting = [sys.executable, "-c", FAKE, "0.01", "3", str(tmp_path / "log"), "fgbg"]
    with pytest.raises(SystemExit, match=r"the reference benchmark failed \(exit 1\)") as error:
        timed_blocks.alternate({"fgbg": waiting, "reference": fails}, 2)
    assert "no torch here" in str(error.value)
    with pytest.raises(ProcessLookupError):  # the fgbg process, waiting for its blocks, ended
        os.kill(int((tmp_path / "log.pid").read_text()), 0)
    # A process that prints no figure at its end fails too.
    silent = [sys.executable, "-c", FAKE.replace('print(f"throughput', '(f"throughput'), "0.01"]
    silent += ["1", str(tmp_path / "log"), "x"]
    with pytest.raises(SystemExit, match="the fgbg benchmark failed"):
        timed_blocks.alternate({"fgbg": silent}, 1)
