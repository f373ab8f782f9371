"""What fgbg reads of the CPU, and the warning for bfloat16 on a CPU that would emulate it."""

import logging

import keras
import pytest

from fgbg_keras import hardware
from fgbg_keras.training import loop
from tests.tiny import tiny_config

# Two logical CPUs of a Zen 3 EPYC as Linux lists them (flags shortened): no bfloat16.
ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2 sha_ni amx_bf16
"""

SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""


def write(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return str(path)


def test_reads_the_first_cpus_name_and_flags(tmp_path):
    info = hardware.read_cpuinfo(write(tmp_path, ZEN3))
    assert info.name == "AMD EPYC 7B13"
    assert "avx2" in info.flags and "fma" in info.flags
    # The second CPU's block is not read: its (made-up) amx_bf16 does not count.
    assert info.bfloat16 is False
    assert "no bfloat16 instructions" in info.describe()


def test_amx_and_avx512_bf16_count_as_bfloat16(tmp_path):
    info = hardware.read_cpuinfo(write(tmp_path, SAPPHIRE_RAPIDS))
    assert info.bfloat16 is True
    assert "amx_bf16" in info.describe() and "avx512_bf16" in info.describe()
    only_avx512 = hardware.read_cpuinfo(write(tmp_path, "flags\t: avx2 avx512_bf16\n"))
    assert only_avx512.bfloat16 is True


def test_no_cpuinfo_means_unknown_and_no_warning(tmp_path):
    info = hardware.read_cpuinfo(str(tmp_path / "missing"))
    assert info.flags is None and info.bfloat16 is None
    assert "unknown" in info.describe()
    assert hardware.precision_warning("mixed_bfloat16", info, []) is None
    # A file with no flags line (another kernel's format) is unknown too, not "no bfloat16".
    assert hardware.read_cpuinfo(write(tmp_path, "processor\t: 0\n")).bfloat16 is None


def test_warns_only_for_emulated_bfloat16(tmp_path):
    zen3 = hardware.read_cpuinfo(write(tmp_path, ZEN3))
    warning = hardware.precision_warning("mixed_bfloat16", zen3, [])
    assert "--precision=mixed_bfloat16" in warning and "AMD EPYC 7B13" in warning
    assert "--precision=float32" in warning
    assert hardware.precision_warning("float32", zen3, []) is None
    assert hardware.precision_warning("mixed_bfloat16", zen3, [(8, 0)]) is None
    amx = hardware.read_cpuinfo(write(tmp_path, SAPPHIRE_RAPIDS))
    assert hardware.precision_warning("mixed_bfloat16", amx, []) is None
    # A GPU older than Ampere emulates bfloat16 too, whatever the CPU.
    old_gpu = hardware.precision_warning("mixed_bfloat16", amx, [(7, 0), (8, 6)])
    assert "compute capability [(7, 0), (8, 6)], older than Ampere" in old_gpu
    assert hardware.precision_warning("float32", amx, [(7, 0)]) is None


@pytest.mark.parametrize("text, warned", [(ZEN3, True), (SAPPHIRE_RAPIDS, False)])
def test_setup_runtime_logs_the_warning(tmp_path, monkeypatch, caplog, text, warned):
    monkeypatch.setattr(hardware, "cpu", lambda: hardware.read_cpuinfo(write(tmp_path, text)))
    monkeypatch.setattr(hardware, "gpu_capabilities", list)
    with caplog.at_level(logging.WARNING):
        loop.setup_runtime(tiny_config(precision="mixed_bfloat16", deterministic=False))
    keras.config.set_dtype_policy("float32")
    assert any("no bfloat16 instructions" in r.getMessage() for r in caplog.records) == warned


def test_auto_precision_is_bfloat16_only_where_it_runs_in_hardware(tmp_path):
    zen3 = hardware.read_cpuinfo(write(tmp_path, ZEN3))
    amx = hardware.read_cpuinfo(write(tmp_path, SAPPHIRE_RAPIDS))
    unknown = hardware.read_cpuinfo(str(tmp_path / "missing"))
    assert hardware.auto_precision(zen3, []) == "float32"
    assert hardware.auto_precision(unknown, []) == "float32"
    assert hardware.auto_precision(amx, []) == "mixed_bfloat16"
    # With GPUs, the GPUs decide: all Ampere (8.0) or newer, or float32.
    assert hardware.auto_precision(zen3, [(8, 0), (9, 0)]) == "mixed_bfloat16"
    assert hardware.auto_precision(amx, [(8, 6), (7, 5)]) == "float32"


@pytest.mark.parametrize(
    "text, precision", [(ZEN3, "float32"), (SAPPHIRE_RAPIDS, "mixed_bfloat16")]
)
def test_precision_auto_is_decided_when_the_flags_are_read(tmp_path, monkeypatch, text, precision):
    from fgbg_keras import flags as fgbg_flags
    from fgbg_keras.training import phases
    from tests.test_train_cli import train_flags

    monkeypatch.setattr(hardware, "cpu", lambda: hardware.read_cpuinfo(write(tmp_path, text)))
    monkeypatch.setattr(hardware, "gpu_capabilities", list)
    flags = train_flags()
    flags.unparse_flags()
    try:
        flags(["train.py", "--precision=auto"])
        config = phases.get(1).validate(fgbg_flags.config_from_flags())
    finally:
        flags.unparse_flags()
    assert config.train.precision == precision


def test_a_config_left_at_auto_is_refused_by_name():
    with pytest.raises(ValueError, match="--precision='auto': is decided when the flags are read"):
        tiny_config(precision="auto").validate()
