"""The multi-style net (issue #19): one-hot equals the pure style, parity with the style vector at odd sizes,
loading a mobile2 net, training, adding a style without touching the others, export and its card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.add_style import add_style
from service.core.stylize.export import ExportOptions, export_checkpoint, export_onnx, parity_check
from service.core.stylize.manifest import read_card, read_manifest
from service.core.stylize.nets import PaddedTransform, build_net
from service.core.stylize.nets.multi import (
    MultiStyleNet,
    PaddedMultiTransform,
    append_style,
    multi_from_state,
    one_hot,
    style_view,
)
from service.core.stylize.onnx_weights import checkpoint_from_onnx
from service.core.stylize.train import TrainConfig, load_checkpoint
from service.core.stylize.train_multi import StyleSource, style_for_step, train_multi

TINY: dict[str, Any] = {"batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0}
ODD = ((33, 47), (257, 383))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _painting(kind: int) -> np.ndarray:
    """Three synthetic paintings with distinct Gram statistics: stripes, rings, a checkerboard."""
    yy, xx = np.mgrid[0:64, 0:64]
    pattern = [((xx + yy) // 6) % 3, (np.hypot(xx - 32, yy - 32) // 5) % 3, ((xx // 8) + (yy // 8)) % 2][kind]
    palettes = [[[230, 40, 30], [30, 60, 220], [250, 220, 40]], [[40, 200, 90], [250, 130, 10], [120, 20, 160]],
                [[20, 20, 20], [240, 240, 240]]]  # fmt: skip
    return np.array(palettes[kind], np.uint8)[pattern.astype(int)]


def _sources(n: int, tmp_path: Path) -> list[StyleSource]:
    out = []
    stems = {"starry_night": "van_gogh_starry_night", "the_scream": "munch_the_scream",
             "great_wave": "hokusai_great_wave"}  # fmt: skip
    for i, (name, stem) in enumerate(list(stems.items())[:n]):
        path = tmp_path / f"{stem}.png"
        Image.fromarray(_painting(i)).save(path)
        out.append(StyleSource(name, _painting(i), file=path))
    return out


def _random_multi(styles: int, seed: int = 0) -> MultiStyleNet:
    """A multi net with every weight randomised (the zero-initialised residual convs and every table too),
    so no layer is the identity and the styles differ clearly."""
    torch.manual_seed(seed)
    net = MultiStyleNet(styles).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(".gamma"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith(".beta"):
                p.copy_(0.2 * torch.randn_like(p))
            elif p.ndim > 1 and float(p.abs().max()) == 0.0:
                p.copy_(0.05 * torch.randn_like(p))
    return net


def _image(seed: int, h: int = 36, w: int = 44, n: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, h // 8), max(2, w // 8), generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear") * 255


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_one_hot_is_the_pure_style_and_a_blend_interpolates() -> None:
    net = _random_multi(3)
    x = _image(1)
    with torch.no_grad():
        outs = [PaddedMultiTransform(net)(x, one_hot(k, 3)) for k in range(3)]
        for k in range(3):  # a one-style net holding only style k's rows is the same function
            rows = {n: p[k : k + 1] for n, p in net.tables()}
            pure = PaddedMultiTransform(style_view(net, rows))(x, torch.ones(1, 1))
            assert torch.equal(pure, outs[k])
        half = PaddedMultiTransform(net)(x, torch.tensor([[0.5, 0.5, 0.0]]))
    assert float((outs[0] - outs[1]).abs().mean()) > 5  # the styles differ ...
    assert float((half - outs[0]).abs().mean()) < float(
        (outs[1] - outs[0]).abs().mean()
    )  # ... a blend between


def test_export_parity_with_the_style_vector_at_odd_sizes(tmp_path: Path) -> None:
    net = _random_multi(3)
    path = export_onnx(net, tmp_path / "multi.onnx")
    errors = parity_check(net, path, ODD)  # each size: a one-hot and a blend; the first: every one-hot
    assert set(errors) == {"33x47", "257x383"} and max(errors.values()) <= 1.0, errors
    session = _session(path)
    inputs = {i.name: [d if isinstance(d, int) else "dyn" for d in i.shape] for i in session.get_inputs()}
    assert inputs == {"input": ["dyn", 3, "dyn", "dyn"], "style": ["dyn", 3]}
    assert [o.name for o in session.get_outputs()] == ["output"]
    # One-hot through ONNX equals PyTorch's pure style, two images of one batch in two styles.
    x = _image(2, 33, 47, n=2)
    w = torch.cat([one_hot(2, 3), one_hot(0, 3)])
    got = session.run(["output"], {"input": x.numpy(), "style": w.numpy()})[0]
    with torch.no_grad():
        for i, k in enumerate((2, 0)):
            ref = PaddedMultiTransform(net)(x[i : i + 1], one_hot(k, 3)).numpy()[0]
            assert np.abs(got[i] - ref).max() <= 1.0
    # The weights read back from the graph are the net's, so a shipped multi net can take a new style.
    back = checkpoint_from_onnx(path)
    assert back["arch"] == "mobile2_multi"
    assert all(torch.equal(back["model"][k], v) for k, v in net.state_dict().items())


def test_a_mobile2_net_loads_as_every_style_of_a_multi_net() -> None:
    torch.manual_seed(4)
    single = build_net("mobile2").eval()
    with torch.no_grad():  # randomise the affine and the zero-initialised convs too
        for p in single.parameters():
            p.add_(0.05 * torch.randn_like(p))
    multi = MultiStyleNet(4).eval()
    multi.load_single(single.state_dict())
    x = _image(3, 40, 52)
    with torch.no_grad():
        ref = PaddedTransform(single)(x)
        for k in range(4):
            assert float((PaddedMultiTransform(multi)(x, one_hot(k, 4)) - ref).abs().max()) < 1e-3
    with pytest.raises(ModelLoadError, match="mobile2"):
        multi.load_single(build_net("mobile").state_dict())


def test_training_lowers_each_styles_loss_and_resumes_bit_identical(
    photos: Path, lite0: Backbone, tmp_path: Path
) -> None:
    styles = _sources(2, tmp_path)
    cfg = TrainConfig(steps=24, lr=1e-2, seed=1, shift_jitter=8, grid_weight=1.0, **TINY)
    result = train_multi(cfg, styles, photos, tmp_path / "a", "m", lite0)
    assert [int(r["style_index"]) for r in result.history[:4]] == [0, 1, 0, 1]  # round robin
    for k in range(2):
        totals = [r["total"] for r in result.history if int(r["style_index"]) == k]
        assert np.mean(totals[-3:]) < 0.9 * np.mean(totals[:3]), (k, totals)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["arch"] == "mobile2_multi" and [s["name"] for s in ckpt["styles"]] == [
        "starry_night",
        "the_scream",
    ]
    # A resumed run ends with the same weights as an uninterrupted one.
    short = TrainConfig(steps=4, seed=2, **TINY)
    whole = train_multi(short, styles, photos, tmp_path / "w", "m", lite0, order="random")
    train_multi(
        TrainConfig(steps=2, seed=2, **TINY), styles, photos, tmp_path / "p", "m", lite0, order="random"
    )
    resumed = train_multi(short, styles, photos, tmp_path / "p", "m", lite0, resume=True, order="random")
    assert resumed.history == whole.history
    sw, sr = load_checkpoint(whole.checkpoint)["model"], load_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(sw[k], sr[k]) for k in sw)
    assert [style_for_step(2, t, 3, "random") for t in range(6)] == [
        style_for_step(2, t, 3, "random") for t in range(6)
    ]
    with pytest.raises(InvalidArgument, match="distinct"):
        train_multi(short, [styles[0], styles[0]], photos, tmp_path / "x", "m", lite0)


def _multi_checkpoint(tmp_path: Path, net: MultiStyleNet, styles: list[StyleSource]) -> Path:
    history = [{"step": float(i + 1), "total": 3.0, "content": 1.0, "style": 2.0, "tv": 1e-4, "range": 0.0,
                "pixel": 0.0, "grid": 0.0, "style_index": float(i % net.styles)} for i in range(6)]  # fmt: skip
    ckpt = {"arch": "mobile2_multi", "model": net.state_dict(), "step": 6, "history": history,
            "config": {"backbone": "efficientnet_lite0"}, "styles": [s.record() for s in styles], "name": "multi"}  # fmt: skip
    path = tmp_path / "multi.ckpt"
    torch.save(ckpt, path)
    return path


def test_export_writes_the_styles_card_and_manifest(tmp_path: Path) -> None:
    from service.cli import main

    styles = _sources(3, tmp_path)
    ckpt = _multi_checkpoint(tmp_path, _random_multi(3), styles)
    models = tmp_path / "models"
    assert (
        main(["export", str(ckpt), "--name", "multi", "-o", str(models)]) == 0
    )  # `atelier export` of a multi net
    (entry,) = read_manifest(models)
    assert (entry.name, entry.style, entry.arch) == ("multi", "multi", "mobile2_multi")
    assert entry.styles == ("starry_night", "the_scream", "great_wave")
    card = read_card(models / entry.card).to_dict()
    assert [s["title"] for s in card["styles"]] == [
        "The Starry Night",
        "The Scream",
        "The Great Wave off Kanagawa",
    ]
    assert set(card["styles"][0]) == {
        "name",
        "style_key",
        "title",
        "artist",
        "year",
        "licence",
        "style_sha256",
    }
    assert card["styles"][1]["style_sha256"] == styles[1].record()["style_sha256"]
    assert set(card["style_losses"]) == {"starry_night", "the_scream", "great_wave"}
    # An unknown painting needs its provenance on the command line, as a single-style export does.
    odd = [StyleSource("odd", _painting(0), file=tmp_path / "nobody_untitled.png")]
    Image.fromarray(_painting(0)).save(tmp_path / "nobody_untitled.png")
    with pytest.raises(InvalidArgument, match=r"odd.*--title"):
        export_checkpoint(
            _multi_checkpoint(tmp_path, _random_multi(1), odd), models, ExportOptions(name="m1")
        )


def test_add_style_trains_only_its_rows_and_leaves_the_others_bit_identical(
    photos: Path, lite0: Backbone, tmp_path: Path
) -> None:
    styles = _sources(3, tmp_path)
    base_net = _random_multi(2, seed=5)
    models = tmp_path / "models"
    opts = ExportOptions(name="multi", version="3", parity_sizes=((33, 47),), note="Trained on two styles.")
    export_checkpoint(_multi_checkpoint(tmp_path, base_net, styles[:2]), models, opts)
    before = _session(models / "multi.mobile2_multi.onnx")
    x = _image(6, 33, 47, n=2).numpy()
    old = [before.run(["output"], {"input": x, "style": one_hot(k, 2, 2).numpy()})[0] for k in range(2)]

    cfg = TrainConfig(steps=12, lr=5e-2, seed=3, **TINY)
    result = add_style(cfg, styles[2], models, photos, tmp_path / "runs", lite0)
    totals = [r["total"] for r in result.history]
    assert np.mean(totals[-3:]) < 0.9 * np.mean(totals[:3]), totals
    # The grown net: shared weights and the old rows bit for bit, in PyTorch and in the re-exported graph.
    grown = multi_from_state(load_checkpoint(result.checkpoint)["model"]).eval()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        for k in range(2):
            a = PaddedMultiTransform(base_net)(xt, one_hot(k, 2, 2))
            assert torch.equal(a, PaddedMultiTransform(grown)(xt, one_hot(k, 3, 2)))
    after = _session(models / "multi.mobile2_multi.onnx")
    for k in range(2):
        assert np.array_equal(
            after.run(["output"], {"input": x, "style": one_hot(k, 3, 2).numpy()})[0], old[k]
        )
    new = after.run(["output"], {"input": x, "style": one_hot(2, 3, 2).numpy()})[0]
    assert np.abs(new - old[0]).mean() > 1.0  # the new style paints something of its own
    (entry,) = read_manifest(models)
    assert entry.styles == ("starry_night", "the_scream", "great_wave") and entry.version == "4"
    card = json.loads((models / entry.card).read_text())
    assert (
        card["styles"][2]["title"] == "The Great Wave off Kanagawa"
        and card["added_styles"][0]["name"] == "great_wave"
    )
    # The base's note is kept, and the new version says what it added.
    assert card["training_note"].startswith("Trained on two styles. Version 4: great_wave added")
    assert max(card["parity_max_abs_error"].values()) <= 1.0
    with pytest.raises(InvalidArgument, match="distinct"):  # a style that is already there
        add_style(cfg, styles[0], models, photos, tmp_path / "runs", lite0)


def test_append_style_copies_every_old_row() -> None:
    net = _random_multi(2)
    rows = {n: torch.full((1, p.shape[1]), 7.0) for n, p in net.tables()}
    grown = append_style(net, rows)
    for (name, p), (_, q) in zip(net.tables(), grown.tables(), strict=True):
        assert torch.equal(q[:2], p) and torch.equal(q[2:], rows[name])
    with pytest.raises(InvalidArgument, match="every table"):
        append_style(net, {})


def test_cli_train_multi_from_a_mobile2_checkpoint_then_add_style(photos: Path, tmp_path: Path) -> None:
    """``atelier train-multi --init`` a mobile2 checkpoint (as the identity warm start is), then ``atelier
    train --add-style NAME --style-image IMG --into CKPT``, which exports to --models."""
    from service.cli import main

    styles = _sources(3, tmp_path)
    torch.manual_seed(0)
    torch.save({"arch": "mobile2", "model": build_net("mobile2").state_dict()}, tmp_path / "warm.ckpt")
    tiny = [
        "--steps",
        "2",
        "--batch",
        "1",
        "--size",
        "32",
        "--style-size",
        "48",
        "--out",
        str(tmp_path / "runs"),
    ]
    code = main(
        ["train-multi", "--name", "multi", "--data", str(photos), "--init", str(tmp_path / "warm.ckpt"),
         "--style", f"starry_night={styles[0].file}", "--style", f"the_scream={styles[1].file}", *tiny]
    )  # fmt: skip
    assert code == 0
    ckpt = load_checkpoint(tmp_path / "runs" / "multi.ckpt")
    assert [s["name"] for s in ckpt["styles"]] == ["starry_night", "the_scream"] and ckpt["step"] == 2
    models = tmp_path / "models"
    code = main(
        ["train", "--add-style", "great_wave", "--style-image", str(styles[2].file), "--data", str(photos),
         "--into", str(tmp_path / "runs" / "multi.ckpt"), "--models", str(models), *tiny]
    )  # fmt: skip
    assert code == 0
    grown = load_checkpoint(tmp_path / "runs" / "multi+great_wave.ckpt")
    rows = len(dict(MultiStyleNet(3).tables()))  # the optimiser held the new rows and nothing else
    assert len(grown["optimizer"]["param_groups"][0]["params"]) == rows
    (entry,) = read_manifest(models)
    assert entry.styles == ("starry_night", "the_scream", "great_wave") and entry.version == "2"
    # Bad input is a one-line error, not a traceback.
    assert main(["train-multi", "--name", "m", "--data", str(photos), "--style", "nopainting", *tiny]) == 2
    assert main(["train", "--add-style", "x", "--data", str(photos), *tiny]) == 2


def test_add_style_resumes_to_the_same_rows(photos: Path, lite0: Backbone, tmp_path: Path) -> None:
    styles = _sources(3, tmp_path)
    base = _multi_checkpoint(tmp_path, _random_multi(2, seed=7), styles[:2])
    four = TrainConfig(steps=4, lr=1e-2, seed=4, **TINY)
    whole = add_style(four, styles[2], base, photos, tmp_path / "w", lite0, export=False)
    add_style(TrainConfig(steps=2, lr=1e-2, seed=4, **TINY), styles[2], base, photos, tmp_path / "p", lite0,
              export=False)  # fmt: skip
    resumed = add_style(four, styles[2], base, photos, tmp_path / "p", lite0, export=False, resume=True)
    assert resumed.history == whole.history and whole.card is None
    a, b = load_checkpoint(whole.checkpoint)["model"], load_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
