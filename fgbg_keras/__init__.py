"""fgbg: self-supervised foreground/background separation for controllable video generation."""

import os
import platform

# TensorFlow runs its CPU kernels through oneDNN only on the CPUs it picks (Intel ones with
# AVX512-VNNI or AMX, among others), and decides when it is imported. On a CPU it leaves out, an
# AMD EPYC (Zen 3), fgbg's float32 training step ran 1.25x to 1.8x faster with oneDNN
# (docs/results/distribution.md, "A CPU without bfloat16 instructions"), so fgbg asks for it
# unless TF_ENABLE_ONEDNN_OPTS is set (=0 keeps Eigen's kernels). It takes effect where this
# package is imported before TensorFlow: train.py, `python -m fgbg_keras...`, the training,
# generation and deployment benchmarks.
if platform.machine().lower() in ("x86_64", "amd64"):  # measured on x86 only
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
