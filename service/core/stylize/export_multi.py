"""The multi-style parts of the export (issue #19; the contract is in docs/multi_style.md).

``stylize.export`` writes every transform net; for a ``mobile2_multi`` net it asks this module for the
graph's second input, the parity check's style vectors, and the card's per-style provenance. The graph:
inputs ``input`` float32 (N, 3, H, W) in [0, 255] and ``style`` float32 (N, S), output ``output``
(N, 3, H, W) in [0, 255]; N, H and W dynamic, S fixed per file; the interpolation ``w @ Gamma`` of the
conditional norms (Dumoulin, Shlens & Kudlur 2017, arXiv:1610.07629) happens inside the graph.

The parity check runs every size with a batch of two images, one with a pure style (a different one at
each size) and one with a seeded random blend, and the first size also with every pure style, so each
style's table rows and the interpolation are both checked at odd sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.nets.multi import MULTI_ARCH, MultiStyleNet, PaddedMultiTransform, multi_from_state

PREFIX = "net."  # the wrapper keeps the net under ``net``, as PaddedTransform does
CARD_STYLE_KEYS = ("name", "style_key", "title", "artist", "year", "licence", "style_sha256")


def graph_spec(net: MultiStyleNet) -> tuple[torch.nn.Module, tuple[Tensor, ...], list[str], dict[str, Any]]:
    """(wrapper, example inputs, input names, dynamic axes) for ``torch.onnx.export``."""
    dims = {0: "batch", 2: "height", 3: "width"}
    example = (torch.rand(1, 3, 64, 64) * 255.0, torch.full((1, net.styles), 1.0 / net.styles))
    axes = {"input": dims, "style": {0: "batch"}, "output": dims}
    return PaddedMultiTransform(net), example, ["input", "style"], axes


def initializers_not_inputs(path: Path) -> None:
    """Rewrite the graph at ``path`` with only ``input`` and ``style`` as inputs (the weights stay
    initializers): the contract's two inputs, after an export that kept every weight apart."""
    import onnx

    model = onnx.load(str(path))
    weights = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save(model, str(path))


def parity_vectors(styles: int, index: int, gen: torch.Generator, with_all: bool) -> Tensor:
    """The style rows checked at one size: one pure style, a random blend, and every pure style."""
    pure = torch.zeros(1, styles)
    pure[0, index % styles] = 1.0
    blend = torch.rand(1, styles, generator=gen) + 0.05  # seeded, every weight above 0
    blend = blend / blend.sum()
    rows = [pure, blend, torch.eye(styles)] if with_all else [pure, blend]
    return torch.cat(rows).float()


def multi_parity(net: MultiStyleNet, session: Any, sizes: tuple[tuple[int, int], ...]) -> dict[str, float]:
    """Max |PyTorch - ONNX Runtime| (0..255 scale) per "HxW" size over the style vectors checked there."""
    wrapped = PaddedMultiTransform(net.float().eval().cpu())
    gen = torch.Generator().manual_seed(0)
    result: dict[str, float] = {}
    for i, (h, w) in enumerate(sizes):
        style = parity_vectors(net.styles, i, gen, with_all=i == 0)
        # Low-frequency noise upsampled, as the single-style check: the net works in its usual range.
        coarse = torch.rand(style.shape[0], 3, max(2, h // 8), max(2, w // 8), generator=gen)
        x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * 255.0
        with torch.no_grad():
            ref = wrapped(x, style).numpy()
        got = session.run(["output"], {"input": x.numpy(), "style": style.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelLoadError(
                f"ONNX output shape {got.shape} differs from PyTorch {ref.shape} at {h}x{w}."
            )
        result[f"{h}x{w}"] = float(np.abs(got.astype(np.float32) - ref).max())
    return result


def multi_checkpoint_from_onnx(path: str | Path) -> dict[str, Any]:
    """A checkpoint (``arch``, ``model``) with the weights of the multi net exported in ``path``."""
    from service.core.stylize.onnx_weights import read_initializers

    found = read_initializers(path)
    state = {
        k.removeprefix(PREFIX): torch.from_numpy(v.copy()) for k, v in found.items() if k.startswith(PREFIX)
    }
    try:
        net = multi_from_state(state)
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"{path} does not hold a {MULTI_ARCH} net as exported by atelier: {exc}"
        ) from None
    return {"arch": MULTI_ARCH, "model": net.state_dict(), "source": str(path)}


def style_records(ckpt: dict[str, Any], fallback: dict[str, str | None]) -> list[dict[str, str]]:
    """The card's ``styles`` list, in style-vector order, from the checkpoint's style records.

    A record's own title/artist/year/licence win, then the built-in painting table (by the painting's file
    stem); ``fallback`` (the export's --title ... options) fills what is still missing, which serves a
    newly added style with a painting the table does not know.
    """
    from service.core.stylize.export import PAINTINGS, PUBLIC_DOMAIN

    records: list[dict[str, str]] = []
    for style in ckpt.get("styles", []):
        stem = str(style.get("style_file", ""))
        title, artist, year = PAINTINGS.get(stem, ("", "", ""))
        known = {"title": title, "artist": artist, "year": year, "licence": PUBLIC_DOMAIN if title else ""}
        info = {k: str(style.get(k) or known[k] or fallback.get(k) or "") for k in known}
        missing = [k for k, v in info.items() if not v]
        if missing:
            raise InvalidArgument(
                f"Unknown painting {stem or '(none)'} of style {style['name']}: pass --{' --'.join(missing)} "
                "for the model card."
            )
        name = str(style["name"])
        records.append({"name": name, "style_key": name, **info, "style_sha256": str(style["style_sha256"])})
    styles = ckpt.get("styles", [])
    if len(records) != styles_of(ckpt) or len({r["name"] for r in records}) != len(records):
        raise ModelLoadError(
            f"The checkpoint's style list ({len(styles)} names) does not match its {styles_of(ckpt)} table rows."
        )
    return records


def styles_of(ckpt: dict[str, Any]) -> int:
    from service.core.stylize.nets.multi import styles_in_state

    return styles_in_state(ckpt["model"])


def card_summary(records: list[dict[str, str]]) -> dict[str, str]:
    """The card's own title/artist/year/licence for a net of several paintings."""
    artists = list(dict.fromkeys(r["artist"] for r in records))
    licences = list(dict.fromkeys(r["licence"] for r in records))
    return {
        "title": f"{len(records)} styles: " + ", ".join(r["name"] for r in records),
        "artist": "; ".join(artists),
        "year": "",
        "licence": licences[0] if len(licences) == 1 else "per style, see styles",
    }


def style_losses(ckpt: dict[str, Any], names: list[str], last: int = 10) -> dict[str, dict[str, float]]:
    """Per style, the mean loss terms of its last ``last`` training steps (rows carry ``style_index``)."""
    from service.core.stylize.train import LOSS_KEYS

    out: dict[str, dict[str, float]] = {}
    history = list(ckpt.get("history", []))
    for i, name in enumerate(names):
        rows = [r for r in history if int(r.get("style_index", -1)) == i][-last:]
        if rows:
            out[name] = {k: round(float(np.mean([r.get(k, 0.0) for r in rows])), 5) for k in LOSS_KEYS}
    return out
