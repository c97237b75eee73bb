"""What ``evaluate`` measured, and the markdown / JSON reports of it (``atelier eval-style``).

Two kinds of figures per (model, photo) pair, for the fast net's result and for the Gatys reference:

* the perceptual distances (Gram style distance to the painting, content distance to the photo), as in
  ``service.core.stylize.evaluate``;
* the picture measures of ``service.core.stylize.measures``: structure (edge correlation with the photo),
  grid score (a 2-8 px crosshatch; beside the photo's own) and droplets (vivid blobs from neither the
  photo nor the painting), the defects a person sees that the distances miss.

Distances are summarised as means over the photos (the bar is on their ratio), picture measures as
medians (one bad photo should not hide or make the picture of the others).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.stylize.measures import GRID_PERIODS, PictureQuality

STYLE_RATIO_BAR = 2.0  # fast style distance at most 2x Gatys'
CONTENT_RATIO_BAR = 1.5  # fast content distance at most 1.5x Gatys'


@dataclass(frozen=True)
class PairResult:
    model: str
    photo: str
    fast_style: float
    gatys_style: float
    fast_content: float
    gatys_content: float
    fast_ms: float  # one fast-net call (prepare + ONNX Runtime + finish)
    gatys_cached: bool
    # The style distances per tap (in the order of EvalReport.style_taps); fast_style is their mean.
    fast_style_taps: tuple[float, ...] = ()
    gatys_style_taps: tuple[float, ...] = ()
    # Picture measures of the fast result and of the Gatys reference (None: not measured).
    fast_picture: PictureQuality | None = None
    gatys_picture: PictureQuality | None = None


@dataclass(frozen=True)
class ModelSummary:
    model: str
    photos: int
    fast_style: float  # mean over photos
    gatys_style: float
    fast_content: float
    gatys_content: float

    @property
    def style_ratio(self) -> float:
        return self.fast_style / max(self.gatys_style, 1e-12)

    @property
    def content_ratio(self) -> float:
        return self.fast_content / max(self.gatys_content, 1e-12)

    @property
    def meets_bar(self) -> bool:
        return self.style_ratio <= STYLE_RATIO_BAR and self.content_ratio <= CONTENT_RATIO_BAR


@dataclass(frozen=True)
class PictureSummary:
    """Medians over the photos of one model's picture measures, for ``"fast"`` or ``"gatys"``."""

    photos: int
    structure: float
    grid: float
    photo_grid: float  # median of the photos' own grid scores
    peaks: dict[int, float]  # period -> median score at that period
    droplets: float

    @property
    def grid_over_photo(self) -> float:
        """Median grid score over the photos' median, in log10 units (0: no more grid than the photos)."""
        return self.grid - self.photo_grid


def summarize_pictures(qualities: Sequence[PictureQuality]) -> PictureSummary | None:
    """Medians of the measures (NaN droplets left out of theirs); None for no measures at all."""
    if not qualities:
        return None
    drops = [q.droplets for q in qualities if not math.isnan(q.droplets)]
    periods = sorted({p for q in qualities for p in q.grid_peaks})
    return PictureSummary(
        photos=len(qualities),
        structure=float(np.median([q.structure for q in qualities])),
        grid=float(np.median([q.grid for q in qualities])),
        photo_grid=float(np.median([q.photo_grid for q in qualities])),
        peaks={
            p: float(np.median([q.grid_peaks[p] for q in qualities if p in q.grid_peaks])) for p in periods
        },
        droplets=float(np.median(drops)) if drops else float("nan"),
    )


@dataclass
class EvalReport:
    size: int
    gatys_steps: int
    backbone: str
    style_taps: tuple[str, ...]
    content_tap: str
    device: str
    providers: dict[str, str]  # model -> ONNX Runtime provider in use
    pairs: list[PairResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was not evaluated
    floors: dict[str, float] = field(
        default_factory=dict
    )  # model -> style distance of the resampled painting
    images: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def models(self) -> list[str]:
        return list(dict.fromkeys(p.model for p in self.pairs))

    def summaries(self) -> list[ModelSummary]:
        out = []
        for model in self.models():
            rows = [p for p in self.pairs if p.model == model]
            out.append(
                ModelSummary(
                    model=model,
                    photos=len(rows),
                    fast_style=float(np.mean([p.fast_style for p in rows])),
                    gatys_style=float(np.mean([p.gatys_style for p in rows])),
                    fast_content=float(np.mean([p.fast_content for p in rows])),
                    gatys_content=float(np.mean([p.gatys_content for p in rows])),
                )
            )
        return out

    def picture_summary(self, model: str, which: str = "fast") -> PictureSummary | None:
        """Medians of ``model``'s picture measures over the photos, of ``"fast"`` or ``"gatys"``."""
        rows = [getattr(p, f"{which}_picture") for p in self.pairs if p.model == model]
        return summarize_pictures([q for q in rows if q is not None])


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _ratios(fast: Sequence[float], gatys: Sequence[float], fmt: str) -> list[str]:
    return [format(f / max(g, 1e-12), fmt) for f, g in zip(fast, gatys, strict=True)]


def _by_tap_lines(report: EvalReport) -> list[str]:
    """Where each model's style gap is: fast / Gatys of the per-tap style distances (means over photos).

    The style distance is the mean over the taps. A tap's ratio says how far the fast net is from Gatys
    there, its share how much that tap weighs in the distance: a tap with a high ratio and a small share
    (typically ``stem``, whose Gram distances are small) moves the total little.
    """
    pairs = [p for p in report.pairs if p.fast_style_taps]
    if not pairs:
        return []
    lines = [
        "",
        "Style ratio by tap: mean fast distance / mean Gatys distance over the photos, per tap, and in "
        "brackets that tap's share of the fast net's style distance (the mean of the taps' distances):",
        "",
        "| model | " + " | ".join(f"`{t}`" for t in report.style_taps) + " |",
        "|---|" + "---:|" * len(report.style_taps),
    ]
    for model in dict.fromkeys(p.model for p in pairs):
        fast = np.mean([p.fast_style_taps for p in pairs if p.model == model], axis=0)
        gatys = np.mean([p.gatys_style_taps for p in pairs if p.model == model], axis=0)
        shares = fast / max(float(fast.sum()), 1e-12)
        cells = [
            f"{r} ({share:.0%})"
            for r, share in zip(_ratios(list(fast), list(gatys), ".2f"), shares, strict=True)
        ]
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return lines


def _num(x: float | None, fmt: str = ".2f", sign: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    return format(x, ("+" if sign else "") + fmt)


def _get(measures: PictureSummary | PictureQuality | None, name: str) -> float | None:
    return None if measures is None else float(getattr(measures, name))


def _picture_lines(report: EvalReport) -> list[str]:
    """The picture measures per model: medians over the photos, fast net beside Gatys."""
    rows = []
    for model in report.models():
        fast, ref = report.picture_summary(model, "fast"), report.picture_summary(model, "gatys")
        if fast is None:
            continue
        peaks = " / ".join(_num(fast.peaks.get(p)) for p in GRID_PERIODS)
        rows.append(
            f"| `{model}` | {_num(fast.structure)} | {_num(_get(ref, 'structure'))} | {_num(fast.grid)} | "
            f"{_num(_get(ref, 'grid'))} | {_num(fast.photo_grid)} | {_num(fast.grid_over_photo, sign=True)} | "
            f"{_num(_get(ref, 'grid_over_photo'), sign=True)} | {peaks} | {_num(fast.droplets, '.1f')} | "
            f"{_num(_get(ref, 'droplets'), '.1f')} |"
        )
    if not rows:
        return []
    return [
        "",
        "Picture measures (medians over the photos; `service/core/stylize/measures`): structure = "
        "correlation of Sobel edge magnitudes with the photo at 128 px (1 = same layout); grid = log10 "
        "of the strongest spectral spike at period 2, 4 or 8 px over its ring's median, beside the "
        "photos' own (over photo: the difference of the medians, 0 = no more crosshatch than the photos); "
        "droplets = per mille of the render covered by vivid blobs from neither the photo nor the painting.",
        "",
        "| model | structure fast | structure Gatys | grid fast | grid Gatys | photos' grid | grid over "
        "photo fast | grid over photo Gatys | fast grid at period 2 / 4 / 8 | droplets ‰ fast "
        "| droplets ‰ Gatys |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def report_markdown(report: EvalReport, machine: str = "") -> str:
    """The evaluation as markdown: a header line, the per-model tables, then per-photo rows in <details>.

    The text between the ``eval-style`` markers is meant to be pasted into ``docs/quality.md``.
    """
    providers = ", ".join(sorted(set(report.providers.values()))) or "?"
    photos = len({p.photo for p in report.pairs})
    lines = [
        "<!-- eval-style: begin (generated by scripts/eval_style.py / atelier eval-style) -->",
        f"{photos} photos at {report.size} px (longer side); Gatys reference: {report.gatys_steps} L-BFGS "
        f"iterations from the content image. Distances on `{report.backbone}` taps: style (Gram) "
        f"{', '.join(f'`{t}`' for t in report.style_taps)}; content `{report.content_tap}`. "
        f"Backbone on `{report.device}`, fast nets on {providers}{'; ' + machine if machine else ''}.",
        "",
        f"Bar: style distance at most {STYLE_RATIO_BAR:g}x Gatys', content distance at most "
        f"{CONTENT_RATIO_BAR:g}x Gatys' (ratios of the means over the photos).",
        "",
        "Floor: the style distance of the painting itself resampled with another filter (torch's "
        "antialiased bilinear instead of PIL's): what resampling alone costs on these taps.",
        "",
        "| model | photos | style dist. fast | style dist. Gatys | floor | style ratio | content dist. fast "
        "| content dist. Gatys | content ratio | style ratio, median of the photos' | fast net ms (median) "
        "| meets bar |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in report.summaries():
        rows = [p for p in report.pairs if p.model == s.model]
        ms = float(np.median([p.fast_ms for p in rows]))
        median_ratio = float(np.median([p.fast_style / max(p.gatys_style, 1e-12) for p in rows]))
        lines.append(
            f"| `{s.model}` | {s.photos} | {_fmt(s.fast_style)} | {_fmt(s.gatys_style)} | "
            f"{_fmt(report.floors.get(s.model, float('nan')))} | {s.style_ratio:.2f} | {_fmt(s.fast_content)} | {_fmt(s.gatys_content)} | "
            f"{s.content_ratio:.2f} | {median_ratio:.2f} | {ms:.0f} | {'yes' if s.meets_bar else '**no**'} |"
        )
    lines += _picture_lines(report)
    lines += _by_tap_lines(report)
    lines += [
        "",
        "<details><summary>Per photo</summary>",
        "",
        "| model | photo | style fast | style Gatys | content fast | content Gatys | style ratio by tap "
        "| structure fast / Gatys | grid fast / Gatys / photo | droplets ‰ fast / Gatys |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for p in report.pairs:
        by_tap = " / ".join(_ratios(p.fast_style_taps, p.gatys_style_taps, ".2g"))
        f, g = p.fast_picture, p.gatys_picture
        lines.append(
            f"| `{p.model}` | {p.photo} | {_fmt(p.fast_style)} | {_fmt(p.gatys_style)} | "
            f"{_fmt(p.fast_content)} | {_fmt(p.gatys_content)} | {by_tap} | "
            f"{_num(_get(f, 'structure'))} / {_num(_get(g, 'structure'))} | "
            f"{_num(_get(f, 'grid'))} / {_num(_get(g, 'grid'))} / {_num(_get(f, 'photo_grid'))} | "
            f"{_num(_get(f, 'droplets'), '.1f')} / {_num(_get(g, 'droplets'), '.1f')} |"
        )
    lines += ["", "</details>"]
    lines += [f"\nNot evaluated: `{m}`: {why}" for m, why in sorted(report.skipped.items())]
    lines += ["<!-- eval-style: end -->", ""]
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None, tuples lists, dict keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_json(report: EvalReport) -> dict[str, Any]:
    """The evaluation as a JSON-ready dict: settings, per-model summaries (distances as means, picture
    measures as medians, with the derived ratios) and every pair."""
    models = []
    for s in report.summaries():
        row: dict[str, Any] = dataclasses.asdict(s)
        row.update(style_ratio=s.style_ratio, content_ratio=s.content_ratio, meets_bar=s.meets_bar)
        row["floor"] = report.floors.get(s.model, float("nan"))
        for which in ("fast", "gatys"):
            pic = report.picture_summary(s.model, which)
            row[f"{which}_picture"] = (
                None if pic is None else {**dataclasses.asdict(pic), "grid_over_photo": pic.grid_over_photo}
            )
        models.append(row)
    pairs = []
    for p in report.pairs:
        row = dataclasses.asdict(p)
        for which in ("fast", "gatys"):
            pic = getattr(p, f"{which}_picture")
            if pic is not None:
                row[f"{which}_picture"]["grid_over_photo"] = pic.grid_over_photo
        pairs.append(row)
    out = {
        "size": report.size,
        "gatys_steps": report.gatys_steps,
        "backbone": report.backbone,
        "style_taps": report.style_taps,
        "content_tap": report.content_tap,
        "device": report.device,
        "providers": report.providers,
        "bars": {"style_ratio": STYLE_RATIO_BAR, "content_ratio": CONTENT_RATIO_BAR},
        "models": models,
        "pairs": pairs,
        "skipped": report.skipped,
    }
    return dict(_clean(out))
