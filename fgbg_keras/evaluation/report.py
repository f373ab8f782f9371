"""The evaluation report: `report.md`, `metrics.json` and PNG plots from the evaluation's results.

    write_report(results, "reports/synthetic")

writes into the folder:
- `metrics.json`: the results dict, as `evaluator.evaluate_and_report` computed it;
- `<metric>_per_step.png` for PSNR, SSIM, control error (and LPIPS when computed): one line per
  method over the rollout steps;
- `masks.png`: per test clip shown, its frames, d, M's masks and (data from recordings) MOG2's;
- `report.md`: the one-step table, the masks, the rollout averages per method, the per-step
  table of the model beside each baseline, the plots, the example rollouts, and the metrics that
  were not computed with the flags that would compute them.
"""

import json
import os

from fgbg_keras.evaluation import methods as rollout_methods
from fgbg_keras.evaluation.rollouts import METRIC_LABELS

# The still of the frames, d and the masks of the first test clips (`pairs.write_mask_images`).
MASKS_IMAGE = "masks.png"
NOT_COMPUTED = {
    "lpips": "--lpips_network=vgg16|alex --lpips_backbone=WEIGHTS --lpips_linear=LINEAR.npz",
    "fvd": "--fvd_model=I3D_SAVED_MODEL",
}


def _methods(rollout):
    """The methods in the results, in the registry's order (unregistered ones last)."""
    registered = rollout_methods.names()
    return [m for m in registered if m in rollout] + sorted(
        m for m in rollout if isinstance(rollout[m], dict) and m not in registered
    )


def _reference(method):
    return method in rollout_methods.names() and rollout_methods.get(method).reference


def _applies(method, name):
    """The reference method compares the true frames with themselves: only its masks count."""
    return not _reference(method) or name in ("control_error", "lost")


def plot_per_step(rollout, output_dir):
    """One PNG per metric with a line per method over the steps; returns {metric: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    files = {}
    steps = list(range(1, rollout["steps"] + 1))
    for name, title, _ in METRIC_LABELS:
        methods = [
            m for m in _methods(rollout) if f"{name}_per_step" in rollout[m] and _applies(m, name)
        ]
        if not methods:
            continue
        figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
        for method in methods:
            axes.plot(
                steps,
                rollout[method][f"{name}_per_step"],
                marker="o",
                markersize=3,
                label=rollout_methods.label(method),
            )
        axes.set_xlabel("rollout step")
        axes.set_ylabel(title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        figure.tight_layout()
        files[name] = f"{name}_per_step.png"
        figure.savefig(os.path.join(output_dir, files[name]))
        pyplot.close(figure)
    return files


def _cell(value, fmt):
    return "n/a" if value is None or value != value else fmt.format(value)


def _one_step_lines(results):
    lines = [
        "# fgbg evaluation",
        "",
        f"Checkpoint `{results.get('checkpoint')}` (Phase {results.get('phase', 1)}, step "
        f"{results.get('step')}), data `{results.get('data', 'synthetic')}`, test split.",
        "",
        "## One step",
        "",
        "| metric | fgbg | baseline |",
        "|---|---|---|",
    ]
    if "mask_iou" in results:
        lines.append(
            f"| mask IoU (binarised at 0.5) | {results['mask_iou']:.3f} | "
            f"{results['diff_mask_iou']:.3f} (frame-difference map) |"
        )
    if "agent_mask_iou" in results:
        lines.append(
            f"| mask IoU, controlled object alone | {results['agent_mask_iou']:.3f} | "
            f"{results['agent_diff_mask_iou']:.3f} (frame-difference map) |"
        )
    lines += [
        f"| next-frame PSNR (dB) | {results['psnr']:.2f} | {results['copy_last_psnr']:.2f} "
        "(copy-last-frame) |",
        f"| next-frame SSIM | {results['ssim']:.3f} | {results['copy_last_ssim']:.3f} "
        "(copy-last-frame) |",
    ]
    if "background_psnr" in results:
        lines += [
            f"| PSNR outside the masks (dB) | {results['background_psnr']:.2f} | "
            f"{results['copy_last_background_psnr']:.2f} (copy-last-frame) |",
            f"| mask mean size | {results['mask_mean']:.3f} | {results['diff_mean']:.3f} "
            "(frame-difference map) |",
        ]
    if "mog2_iou" in results:
        lines.append(
            f"| mask IoU with MOG2's masks | {results['mog2_iou']:.3f} | "
            f"{results['mog2_mean']:.3f} (MOG2's mean size) |"
        )
    lines += ["", f"{results['pairs']} frame pairs."]
    return lines + [
        "",
        "Per test clip, top to bottom: its frames, the change map d, M's masks"
        + (", MOG2's masks" if "mog2_iou" in results else "")
        + " (white: foreground).",
        "",
        f"![masks]({MASKS_IMAGE})",
    ]


def _averages_lines(rollout, methods, present):
    """The rollout averages: a row per method, and the FVD protocol when FVD was computed."""
    fvd = "fvd_protocol" in rollout
    lines = [
        "",
        f"## Controlled rollouts: {rollout['clips']} clips x {rollout['steps']} steps",
        "",
        "| method | "
        + " | ".join(title for _, title, _ in present)
        + " | object lost |"
        + (" FVD |" if fvd else ""),
        "|---|" + "---|" * (len(present) + 1 + fvd),
    ]
    for method in methods:
        cells = [
            _cell(rollout[method].get(name), fmt) if _applies(method, name) else "—"
            for name, _, fmt in present
        ]
        cells.append(_cell(rollout[method].get("lost"), "{:.3f}"))
        if fvd:
            cells.append(_cell(rollout[method].get("fvd"), "{:.1f}"))
        lines.append(f"| {rollout_methods.label(method)} | " + " | ".join(cells) + " |")
    if fvd:
        lines += [
            "",
            "FVD protocol: "
            + "; ".join(f"{key} {value}" for key, value in rollout["fvd_protocol"].items())
            + ". Generated rollouts against the true clips they start from; FVD figures are "
            "comparable only under the same protocol.",
        ]
    return lines


def _per_step_lines(rollout, methods, present):
    """A table per metric: the primary method beside every baseline, step by step."""
    model = rollout_methods.primary(rollout)
    baselines = [m for m in methods if m != model and not _reference(m)]
    lines = []
    for name, title, fmt in present:
        if f"{name}_per_step" not in rollout[model]:
            continue
        shown = [model] + [m for m in baselines if f"{name}_per_step" in rollout[m]]
        lines += [
            "",
            f"### {title} per step",
            "",
            "| step | " + " | ".join(rollout_methods.label(m) for m in shown) + " |",
            "|---|" + "---|" * len(shown),
        ]
        for k in range(rollout["steps"]):
            cells = [_cell(rollout[m][f"{name}_per_step"][k], fmt) for m in shown]
            lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
    return lines


def _rollout_lines(rollout, plots, rollout_gif):
    methods = _methods(rollout)
    present = [m for m in METRIC_LABELS if any(m[0] in rollout[x] for x in methods)]
    lines = _averages_lines(rollout, methods, present) + _per_step_lines(rollout, methods, present)
    for name, file in (plots or {}).items():
        lines += ["", f"![{name} per step]({file})"]
    if rollout_gif:
        lines += [
            "",
            "## Example rollouts",
            "",
            "Per clip, top to bottom: the true frames, the generated frames, the generated "
            "frames with their masks. Animated: all steps; still: 4 clips at 5 steps, left to "
            "right.",
            "",
            f"![rollouts]({rollout_gif})",
            "",
            f"![rollouts at 5 steps]({os.path.splitext(rollout_gif)[0]}.png)",
        ]
    return lines


def markdown(results, plots=None, rollout_gif=None):
    """The report's text (see the module docstring)."""
    lines = _one_step_lines(results)
    rollout = results.get("rollout")
    if rollout:
        lines += _rollout_lines(rollout, plots, rollout_gif)
    missing = [
        f"- {name.upper()}: not computed; pass `{flags}`."
        for name, flags in NOT_COMPUTED.items()
        if results.get(name) is None
        and not (rollout and name in rollout.get(rollout_methods.primary(rollout), {}))
    ]
    if missing:
        lines += ["", "## Not computed", "", *missing]
    return "\n".join(lines) + "\n"


def write_report(results, output_dir, rollout_gif=None):
    """Writes `metrics.json`, the plots and `report.md` into `output_dir` (created if needed);
    `rollout_gif` is a file name inside it. Returns the path of `report.md`."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(results, f, indent=2)
    plots = plot_per_step(results["rollout"], output_dir) if results.get("rollout") else {}
    path = os.path.join(output_dir, "report.md")
    with open(path, "w") as f:
        f.write(markdown(results, plots, rollout_gif))
    return path
