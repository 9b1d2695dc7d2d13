"""Error against step size on log–log axes, with reference slopes (the ``plot`` extra).

Input: ``verify.Report``. Output: a PNG file.
"""

from __future__ import annotations


def plot_report(report, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    hs = np.asarray(report.hs)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    styles = {"corrected": "o-", "uncorrected": "s--"}
    for label, errors in report.errors.items():
        ax.loglog(hs, errors, styles[label], label=f"trajectory, {label}")
    for label, residuals in report.residuals.items():
        ax.loglog(hs, residuals, styles[label], alpha=0.5, label=f"residual, {label}")
    top = max(max(v) for v in report.errors.values())
    for slope in sorted({1, report.order + 1}):
        ax.loglog(hs, top * (hs / hs[0]) ** slope, ":", color="gray")
        ax.annotate(f"slope {slope}", (hs[-1], top * (hs[-1] / hs[0]) ** slope), color="gray")
    ax.set_xlabel("step size h")
    ax.set_ylabel("error")
    ax.set_title(f"{report.name}: {report.regime} regime, order {report.order}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
