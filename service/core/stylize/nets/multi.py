"""``mobile2_multi``: the ``mobile2`` net made conditional on a style-weight vector, so one network (one ONNX
file, one session) paints every style and any blend of them.

Conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic
Style", arXiv:1610.07629): the convolutions are shared by every style, and each normalisation layer holds
one scale/shift pair per style, tables ``gamma`` and ``beta`` of shape (S, C). A style-weight vector ``w``
(N, S), non-negative and summing to 1, picks the parameters as ``gamma = w @ Gamma``, ``beta = w @ Beta``:
a one-hot ``w`` is exactly that style's net, and a blend interpolates the parameters, which Dumoulin et al.
show blends the styles smoothly (their section 4.2).

``mobile2`` has instance norm only in its two encoder layers, because normalisation in the residual body
and the decoder painted colour droplets (Karras et al. 2019, StyleGAN2, arXiv:1912.04958: a net smuggles a
local spike past the normalisation to steer the image-wide statistics). Two conditional norms, 160 numbers
per style, are too few to carry a style: Dumoulin et al. condition every layer of their net, about 3000
numbers per style, and the encoder's norms only see the photo's low-level statistics. So the body and the
decoder get a *conditional per-channel affine* without normalisation: FiLM (Perez et al. 2018, "FiLM:
Visual Reasoning with a General Conditioning Layer", arXiv:1709.07871), ``y = gamma * x + beta`` with the
same per-style tables. It has no statistic computed from the feature map, so there is nothing for a spike
to dominate and the droplet cure holds: StyleGAN2's own cure is likewise a per-channel style scale
(modulation) whose normaliser is computed from the weights, not the data. Each residual block has one
FiLM after its first separable conv (before the ReLU: the style moves the non-linearity's threshold) and
one on its branch output (the style scales the block's contribution); the decoder has one after each of
its two convolutions that precede an upsampling. About 1540 numbers per style in all (mobile2 has 62 k
shared weights).

Every module and parameter of ``mobile2`` keeps its name here, apart from the two encoder norms, whose
``weight``/``bias`` become the tables ``gamma``/``beta`` (``load_single`` copies them into every style's
row); the FiLM layers are extra modules (``film``, ``film_out``, ``decoder_film``) that start at the
identity (1, 0). So a multi net built from a trained ``mobile2`` (or from the identity warm start)
reproduces that net for every style, and training then moves each style's rows apart.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.nets import TransformNet
from service.core.stylize.nets.mobile import SeparableConv
from service.core.stylize.nets.mobile2 import Mobile2Net

MULTI_ARCH = "mobile2_multi"
BASE_ARCH = "mobile2"  # the single-style net whose shared weights a multi net reads
TABLES = ("gamma", "beta")  # parameter names of the per-style tables, shape (S, C)


class StyleTable(nn.Module):
    """Per-style scale and shift tables (S, C); ``params(w)`` interpolates them for a (N, S) batch."""

    def __init__(self, styles: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(styles, channels))
        self.beta = nn.Parameter(torch.zeros(styles, channels))

    def params(self, w: Tensor) -> tuple[Tensor, Tensor]:
        g, b = w @ self.gamma, w @ self.beta  # (N, C): one MatMul each, kept in the exported graph
        return g[:, :, None, None], b[:, :, None, None]


class CondInstanceNorm(StyleTable):
    """Conditional instance norm (Dumoulin et al. 2017): IN without affine, then the style's scale/shift."""

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        g, b = self.params(w)
        return F.instance_norm(x, eps=1e-5) * g + b  # nn.InstanceNorm2d's eps, as in mobile2


class FiLM(StyleTable):
    """Conditional per-channel affine, no normalisation (Perez et al. 2018): nothing for a droplet to steer."""

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        g, b = self.params(w)
        return x * g + b


class ResidualFiLM(nn.Module):
    """mobile2's residual block (same ``body`` names) with a FiLM inside the branch and on its output."""

    def __init__(self, ch: int, styles: int) -> None:
        super().__init__()
        last = SeparableConv(ch, ch)
        nn.init.zeros_(last.pw.weight)
        nn.init.zeros_(last.pw.bias)  # type: ignore[arg-type]  # pointwise convs have a bias
        self.body = nn.Sequential(SeparableConv(ch, ch), nn.ReLU(inplace=True), last)
        self.film = FiLM(styles, ch)
        self.film_out = FiLM(styles, ch)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        h = self.body[1](self.film(self.body[0](x), w))
        return x + self.film_out(self.body[2](h), w)


class MultiStyleNet(TransformNet):
    """``forward(x, w)``: x (N, 3, H, W) in [0, 255] with H, W divisible by 4, w (N, S) style weights."""

    arch = MULTI_ARCH
    total_stride = 4

    def __init__(self, styles: int, width: int = 64, blocks: int = 5, dec: int = 32, head: int = 16) -> None:
        super().__init__()
        if styles < 1:
            raise InvalidArgument(f"A multi-style net needs at least one style, got {styles}.")
        self.styles = styles
        base = Mobile2Net(width, blocks, dec, head)  # the shared convolutions, under mobile2's names
        enc = base.encoder  # conv, IN, ReLU, conv, IN, ReLU: the two INs become conditional
        self.encoder = nn.ModuleList(
            [enc[0], CondInstanceNorm(styles, head), enc[2], enc[3], CondInstanceNorm(styles, width), enc[5]]
        )
        self.body = nn.ModuleList([ResidualFiLM(width, styles) for _ in range(blocks)])
        self.decoder = base.decoder
        self.decoder_film = nn.ModuleList([FiLM(styles, dec), FiLM(styles, head)])

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        w = w.to(x.dtype)
        h = x / 127.5 - 1.0
        for layer in self.encoder:
            h = layer(h, w) if isinstance(layer, CondInstanceNorm) else layer(h)
        for block in self.body:
            h = block(h, w)
        d = self.decoder
        h = d[1](d[0](h))  # 1x1 narrow, bilinear x2
        h = self.decoder_film[0](d[2](h), w)  # separable conv at 1/2 resolution, the style's affine
        h = self.decoder_film[1](d[4](d[3](h)), w)  # ReLU, 1x1 to the head width, the style's affine
        h = d[7](d[6](d[5](h)))  # bilinear x2, ReLU, dense 3x3 to RGB at full resolution
        return h * 127.5 + 127.5

    def tables(self) -> list[tuple[str, nn.Parameter]]:
        """Every per-style table (name, (S, C) parameter), in state-dict order."""
        return [(n, p) for n, p in self.named_parameters() if n.rsplit(".", 1)[-1] in TABLES]

    def load_single(self, state: Mapping[str, Tensor]) -> None:
        """Shared weights from a ``mobile2`` state dict; every style's norm rows get that net's affine.

        The FiLM tables are left as they are (identity at construction), so the result equals the
        single-style net for every one-hot style vector.
        """
        own = self.state_dict()
        mapped: dict[str, Tensor] = {}
        for key, value in state.items():
            prefix, leaf = key.rsplit(".", 1)
            table = {"weight": "gamma", "bias": "beta"}.get(leaf)
            if table is not None and f"{prefix}.{table}" in own and prefix.startswith("encoder."):
                mapped[f"{prefix}.{table}"] = value.reshape(1, -1).expand(self.styles, -1).clone()
            else:
                mapped[key] = value
        unknown = sorted(set(mapped) - set(own))
        missing = sorted(k for k in set(own) - set(mapped) if not _is_film(k))
        if unknown or missing:
            raise ModelLoadError(
                f"Not a {BASE_ARCH} state dict: unexpected {unknown[:3]}, missing {missing[:3]}."
            )
        for key, value in mapped.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ModelLoadError(
                    f"{BASE_ARCH} weight {key} has shape {tuple(value.shape)}, the multi net "
                    f"{tuple(own[key].shape)}."
                )
        self.load_state_dict(mapped, strict=False)


def _is_film(key: str) -> bool:
    return ".film" in key or key.startswith("decoder_film.")


def styles_in_state(state: Mapping[str, Tensor]) -> int:
    """The style count of a multi net's state dict (rows of its first table)."""
    table = state.get("encoder.1.gamma")
    if table is None or table.ndim != 2:
        raise ModelLoadError(f"Not a {MULTI_ARCH} state dict: no (S, C) table encoder.1.gamma.")
    return int(table.shape[0])


def multi_from_state(state: Mapping[str, Tensor]) -> MultiStyleNet:
    """A multi net holding ``state`` (its style count read from the tables)."""
    net = MultiStyleNet(styles_in_state(state))
    try:
        net.load_state_dict(dict(state))
    except RuntimeError as exc:
        raise ModelLoadError(
            f"Checkpoint weights do not match the {MULTI_ARCH} architecture: {exc}"
        ) from None
    return net


def style_view(net: MultiStyleNet, rows: Mapping[str, Tensor]) -> MultiStyleNet:
    """A one-style net sharing ``net``'s convolutions (copied), whose tables are ``rows`` ((1, C) per table
    name): what ``add_style`` trains, with w = [1] it is the new style."""
    view = MultiStyleNet(1)
    state = {k: v for k, v in net.state_dict().items() if k.rsplit(".", 1)[-1] not in TABLES}
    view.load_state_dict({**state, **{k: v.detach().reshape(1, -1) for k, v in rows.items()}})
    return view


def append_style(net: MultiStyleNet, rows: Mapping[str, Tensor]) -> MultiStyleNet:
    """``net`` with one more style: each table's rows, then the (1, C) row of the same name in ``rows``.

    The existing rows and every shared weight are copied bit for bit, so the other styles' outputs do not
    change (a one-hot ``w @ Gamma`` is that row exactly, whatever the other rows hold).
    """
    tables = dict(net.tables())
    if set(rows) != set(tables):
        raise InvalidArgument(
            f"New style rows must cover every table: {sorted(set(tables) ^ set(rows))[:3]}."
        )
    grown = MultiStyleNet(net.styles + 1)
    state = dict(net.state_dict())
    for key, table in tables.items():
        state[key] = torch.cat([table.detach(), rows[key].detach().reshape(1, -1).to(table.dtype)])
    grown.load_state_dict(state)
    return grown


def one_hot(index: int, styles: int, batch: int = 1) -> Tensor:
    """The (batch, styles) style vector of one pure style."""
    if not 0 <= index < styles:
        raise InvalidArgument(f"Style index {index} is outside 0..{styles - 1}.")
    w = torch.zeros(batch, styles)
    w[:, index] = 1.0
    return w


class PaddedMultiTransform(nn.Module):
    """Serving wrapper of a multi net, as ``PaddedTransform``: reflect-pad to the stride, run, crop, clamp.

    Inputs ``x`` (N, 3, H, W) in [0, 255] and ``style`` (N, S) already normalised by the caller.
    """

    def __init__(self, net: MultiStyleNet) -> None:
        super().__init__()
        self.net = net
        self.stride = net.total_stride

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h = (self.stride - h % self.stride) % self.stride
        pad_w = (self.stride - w % self.stride) % self.stride
        y = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        y = self.net(y, style)[:, :, :h, :w]
        return y.clamp(0.0, 255.0)


__all__ = [
    "BASE_ARCH",
    "MULTI_ARCH",
    "CondInstanceNorm",
    "FiLM",
    "MultiStyleNet",
    "PaddedMultiTransform",
    "append_style",
    "multi_from_state",
    "one_hot",
    "style_view",
    "styles_in_state",
]
