"""Markdown tables for the faithfulness and sanity results (used by the CLI and the docs)."""

from __future__ import annotations

from collections.abc import Sequence

from service.core.backbones.base import Backbone
from service.core.saliency.faithfulness import FaithfulnessRow
from service.core.saliency.sanity import SanityRow, stage_label


def faithfulness_table(rows: Sequence[FaithfulnessRow], steps: int) -> str:
    """Rows sorted by MoRF/LeRF ratio (best first); baselines marked."""
    head = (
        f"Deletion to a blurred copy, {steps} steps; areas under the probability of the explained class.\n\n"
        "| map | MoRF area (lower better) | LeRF area (higher better) | MoRF/LeRF (lower better) "
        "| insertion area | images with ratio < 1 |\n|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in sorted(rows, key=lambda r: r.ratio):
        name = f"*{r.method} (baseline)*" if r.method in ("random", "centre") else r.method
        wins = sum(v < 1 for v in r.per_image_ratio)
        lines.append(
            f"| {name} | {r.morf:.3f} | {r.lerf:.3f} | {r.ratio:.3f} | {r.insertion:.3f} "
            f"| {wins}/{len(r.per_image_ratio)} |"
        )
    return "\n".join(lines)


def sanity_table(backbone: Backbone, rows: Sequence[SanityRow], stages: Sequence[int]) -> str:
    """Spearman correlation with the trained network's map after each cumulative randomisation stage."""
    cols = [f"top {n} (to `{stage_label(backbone, n)}`)" for n in stages]
    lines = [
        "Cascading randomisation (Adebayo et al. 2018): Spearman rank correlation with the trained net's map "
        "(below 0.5 = the map depends on the weights).\n",
        "| method | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for r in rows:
        lines.append(f"| {r.method} | " + " | ".join(f"{c:.3f}" for c in r.correlations) + " |")
    return "\n".join(lines)
