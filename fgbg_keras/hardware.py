"""What this machine's CPU offers that training speed depends on.

`--precision=mixed_bfloat16` is fast on a CPU only where it has bfloat16 instructions (AMX-BF16
on Intel Sapphire Rapids and newer, AVX512-BF16 on Cooper Lake and AMD Zen 4 and newer);
elsewhere TensorFlow emulates it. Measured with `benchmarks/train_step.py`
(docs/results/distribution.md, "A CPU without bfloat16 instructions"): on a 2-core AMD EPYC
(Zen 3: AVX2, no AVX-512), the default model's training step ran 6x slower in mixed_bfloat16
than in float32, the gradients of its convolutions taking 95% of the kernel time, where a
2-core Xeon with AMX ran it 1.6x faster.
"""

import functools
import platform

from absl import logging

from fgbg_keras.config import AUTO_PRECISION, PRECISIONS

# /proc/cpuinfo's names for the instructions that compute in bfloat16.
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# The first GPUs with bfloat16 tensor cores: compute capability 8.0.
AMPERE = (8, 0)


class CpuInfo:
    """The first CPU of /proc/cpuinfo: its `name` and its instruction-set `flags` (a frozenset),
    or `flags` None where the file is missing or lists none (another OS, or an ARM CPU, whose
    file says "Features"): nothing is known, and `--precision=auto` takes float32."""

    def __init__(self, name, flags):
        self.name = name
        self.flags = flags

    @property
    def bfloat16(self):
        """True where the CPU computes in bfloat16, False where it would be emulated, None
        where its flags are unknown."""
        if self.flags is None:
            return None
        return any(flag in self.flags for flag in BFLOAT16_FLAGS)

    def describe(self):
        """One line: the model name and what bfloat16 runs on."""
        if self.bfloat16 is None:
            bf16 = "instruction set unknown"
        elif self.bfloat16:
            found = ", ".join(flag for flag in BFLOAT16_FLAGS if flag in self.flags)
            bf16 = f"bfloat16 in hardware ({found})"
        else:
            bf16 = "no bfloat16 instructions (bfloat16 is emulated)"
        return f"{self.name}; {bf16}"


def read_cpuinfo(path="/proc/cpuinfo"):
    """Parses `path` into a `CpuInfo` (Linux's format: `key<TAB>: value` lines, one block per
    logical CPU, of which the first is read)."""
    name, flags = platform.processor() or platform.machine() or "unknown CPU", None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return CpuInfo(name, None)
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name":
            name = value.strip()
        elif key == "flags":
            flags = frozenset(value.split())
    return CpuInfo(name, flags or None)


@functools.cache
def cpu():
    """This machine's `CpuInfo`, read once."""
    return read_cpuinfo()


def gpu_capabilities():
    """The CUDA compute capability of each GPU TensorFlow sees, as (major, minor); (0, 0) where
    TensorFlow does not say."""
    import tensorflow as tf

    return [
        tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def auto_precision(cpu_info, capabilities):
    """What `--precision=auto` trains in: mixed_bfloat16 where bfloat16 runs in hardware,
    float32 elsewhere. With GPUs (their compute `capabilities`), mixed_bfloat16 when every one
    is an Ampere or newer (8.0 and up: bfloat16 tensor cores); with none, when the CPU has
    bfloat16 instructions (`CpuInfo.bfloat16`; float32 where that is unknown)."""
    float32, bfloat16 = PRECISIONS
    if capabilities:
        return bfloat16 if all(c >= AMPERE for c in capabilities) else float32
    return bfloat16 if cpu_info.bfloat16 else float32


def resolve_precision(precision):
    """`precision`, or for `--precision=auto` this machine's `auto_precision`, logged. Each
    process decides for itself: the workers of a multi-worker run on unlike machines, or a run
    resumed on another machine, may train in another precision (the float32 variables of a
    checkpoint load either way)."""
    if precision != AUTO_PRECISION:
        return precision
    cpu_info, capabilities = cpu(), gpu_capabilities()
    precision = auto_precision(cpu_info, capabilities)
    where = f"{len(capabilities)} GPU(s)" if capabilities else cpu_info.describe()
    logging.info("--precision=%s: %s (%s)", AUTO_PRECISION, precision, where)
    return precision


def precision_warning(precision, cpu_info, capabilities):
    """The warning a run in `precision` deserves on a machine with `cpu_info` and GPUs of
    compute `capabilities`, or None: mixed_bfloat16 where it would be emulated, on a CPU with
    no bfloat16 instructions and no GPU, or on a GPU older than Ampere."""
    if "bfloat16" not in precision:
        return None
    if capabilities:
        if all(c >= AMPERE for c in capabilities):
            return None
        where = f"GPUs of compute capability {sorted(set(capabilities))}, older than Ampere"
    elif cpu_info.bfloat16 is False:
        where = (
            f"a CPU with no bfloat16 instructions ({cpu_info.name}: none of "
            f"{', '.join(BFLOAT16_FLAGS)} in /proc/cpuinfo) and no GPU"
        )
    else:
        return None
    return (
        f"--precision={precision} on {where}: bfloat16 is emulated there (a training step ran "
        "6x slower than in float32 on a CPU without bfloat16 instructions). --precision=float32 "
        "(or auto) is the fast choice on this machine."
    )


def describe_onednn():
    """Whether TensorFlow's oneDNN kernels are on in this process, in words."""
    return {True: "on", False: "off (TF_ENABLE_ONEDNN_OPTS=1 turns it on)", None: "unknown"}[
        onednn_enabled()
    ]


def onednn_enabled():
    """Whether TensorFlow runs its CPU kernels through oneDNN in this process (True/False), or
    None where this TensorFlow build does not say. TensorFlow decides once, at import, from
    `TF_ENABLE_ONEDNN_OPTS` or, unset, from the CPU."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
