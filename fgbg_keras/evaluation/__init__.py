"""Evaluation: metrics, the registry of rollout methods (`evaluation.methods`), one-step and
rollout scoring, the report, LPIPS and FVD from user networks, and the ablation grid."""
