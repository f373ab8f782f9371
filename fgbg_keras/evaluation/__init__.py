"""Evaluation: the registry of rollout methods (`evaluation.methods`), one-step and rollout
scoring, the report, LPIPS and FVD from user networks (the metrics are `fgbg_keras.metrics`)."""
