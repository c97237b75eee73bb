"""ONNX export: parity with PyTorch at odd sizes, dynamic batch/height/width, model card and manifest."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.export import ExportOptions, export_checkpoint, export_onnx, parity_check
from service.core.stylize.manifest import read_card, read_manifest, sha256_file
from service.core.stylize.nets import PaddedTransform, build_net
from service.core.stylize.onnx_weights import checkpoint_from_onnx

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mobile_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    net = build_net("mobile").eval()
    # Randomise the instance-norm affine parameters too, so the check covers more than the defaults.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "m.onnx")
    return net, path


def test_parity_with_pytorch_at_odd_sizes(mobile_onnx: tuple[torch.nn.Module, Path]) -> None:
    net, path = mobile_onnx
    errors = parity_check(net, path, ((33, 47), (257, 383), (517, 389)))  # type: ignore[arg-type]
    assert set(errors) == {"33x47", "257x383", "517x389"}
    assert max(errors.values()) <= 1.0


def test_graph_io_contract_and_dynamic_axes(mobile_onnx: tuple[torch.nn.Module, Path]) -> None:
    net, path = mobile_onnx
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert (inp.name, out.name) == ("input", "output")
    for value in (inp, out):
        dims = value.type.tensor_type.shape.dim
        assert [bool(d.dim_param) for d in dims] == [True, False, True, True]  # N, 3, H, W
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in ((2, 3, 21, 34), (1, 3, 40, 16)):
        x = rng.uniform(0, 255, shape).astype(np.float32)
        y = session.run(["output"], {"input": x})[0]
        assert y.shape == shape
        assert y.min() >= 0.0 and y.max() <= 255.0
        with torch.no_grad():
            ref = PaddedTransform(net)(torch.from_numpy(x)).numpy()  # type: ignore[arg-type]
        assert np.abs(y - ref).max() <= 1.0
    # Batch items are independent (instance norm, no batch statistics).
    x = rng.uniform(0, 255, (2, 3, 24, 24)).astype(np.float32)
    both = session.run(["output"], {"input": x})[0]
    single = session.run(["output"], {"input": x[1:]})[0]
    assert np.abs(both[1:] - single).max() <= 1e-3


def test_johnson_exports_with_parity_at_an_odd_size(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = build_net("johnson").eval()
    path = export_onnx(net, tmp_path / "j.onnx")
    errors = parity_check(net, path, ((33, 47),))
    assert errors["33x47"] <= 1.0


def _checkpoint(tmp_path: Path, arch: str = "mobile") -> Path:
    torch.manual_seed(2)
    net = build_net(arch)
    history = [
        {"step": float(i + 1), "total": 3.0, "content": 1.0, "style": 2.0, "tv": 1e-4} for i in range(3)
    ]
    ckpt = {
        "arch": arch,
        "model": net.state_dict(),
        "step": 3,
        "history": history,
        "config": {"backbone": "x"},
    }
    path = tmp_path / f"s.{arch}.ckpt"
    torch.save(ckpt, path)
    return path


def test_export_checkpoint_writes_card_and_registers(tmp_path: Path) -> None:
    models = tmp_path / "models"
    opts = ExportOptions(
        name="starry_night",
        style_image=Path("van_gogh_starry_night.jpg"),
        fp16=True,
        parity_sizes=((33, 47), (64, 80)),
    )
    card = export_checkpoint(_checkpoint(tmp_path), models, opts)
    (entry,) = read_manifest(models)
    assert (entry.name, entry.arch, entry.file) == ("starry_night", "mobile", "starry_night.mobile.onnx")
    assert entry.sha256 == sha256_file(models / entry.file) == card["onnx_sha256"]
    fp16 = json.loads((models / entry.card).read_text())["fp16_parity"]
    if fp16["checked"]:  # the fp16 copy is registered only when it passes the same parity limit
        assert max(fp16["max_abs_error"].values()) <= 1.0
        assert entry.fp16_file and entry.fp16_sha256 == sha256_file(models / entry.fp16_file)
    else:
        assert entry.fp16_file is None and "refused" in fp16
    saved = read_card(models / entry.card)
    assert (saved.title, saved.artist, saved.year) == ("The Starry Night", "Vincent van Gogh", "1889")
    assert set(saved.parity_max_abs) == {"33x47", "64x80"} and max(saved.parity_max_abs.values()) <= 1.0
    assert saved.opset == 17 and saved.final_losses["total"] == 3.0
    # Re-exporting replaces the entry instead of adding a second one.
    export_checkpoint(_checkpoint(tmp_path), models, ExportOptions(name="starry_night", title="T", artist="A",
                      year="1", licence="L", parity_sizes=((20, 20),)))  # fmt: skip
    assert [e.name for e in read_manifest(models)] == ["starry_night"]


def test_an_fp16_copy_above_the_parity_limit_is_not_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.core.stylize.export as export

    def bad_parity(net: object, path: Path, sizes: object) -> dict[str, object]:
        return {"checked": True, "provider": "CPUExecutionProvider", "cuda_checked": False,
                "max_abs_error": {"33x47": 0.5, "64x80": 3.0}}  # fmt: skip

    monkeypatch.setattr(export, "fp16_parity", bad_parity)
    models = tmp_path / "models"
    opts = ExportOptions(
        name="starry_night",
        style_image=Path("van_gogh_starry_night.jpg"),
        fp16=True,
        parity_sizes=((33, 47),),
    )
    export_checkpoint(_checkpoint(tmp_path), models, opts)
    (entry,) = read_manifest(models)
    assert entry.fp16_file is None and not (models / "starry_night.mobile.fp16.onnx").exists()
    card = json.loads((models / entry.card).read_text())
    assert "fp16_file" not in card and "above the limit" in card["fp16_parity"]["refused"]


def test_export_refuses_unknown_painting_and_bad_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="--title"):
        export_checkpoint(_checkpoint(tmp_path), tmp_path / "m", ExportOptions(name="x"))
    bad = tmp_path / "bad.ckpt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(ModelLoadError, match="not an atelier training checkpoint"):
        export_checkpoint(bad, tmp_path / "m", ExportOptions(name="x"))
    with pytest.raises(InvalidArgument, match="Opset 11"):
        export_onnx(build_net("mobile"), tmp_path / "old.onnx", opset=11)


def test_weights_read_back_from_the_graph_are_the_nets(mobile_onnx: tuple[torch.nn.Module, Path]) -> None:
    net, path = mobile_onnx
    ckpt = checkpoint_from_onnx(path)
    assert ckpt["arch"] == "mobile"
    state = net.state_dict()
    assert set(ckpt["model"]) == set(state)
    for k, v in state.items():
        assert torch.equal(ckpt["model"][k], v), k


@pytest.mark.parametrize("file", ["the_scream.mobile.onnx", "night_cafe.mobile2.onnx"])
def test_a_shipped_model_rebuilt_from_its_graph_matches_the_graph(file: str) -> None:
    """What ``--init-from models/<style>.<arch>.onnx`` fine-tunes is the net that is being served."""
    path = Path(__file__).resolve().parents[1] / "models" / file
    ckpt = checkpoint_from_onnx(path)
    net = build_net(ckpt["arch"])
    net.load_state_dict(ckpt["model"])
    errors = parity_check(net.eval(), path, ((41, 57),))
    assert errors["41x57"] <= 1.0, errors


def test_a_file_without_a_transform_nets_weights_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="Could not read"):
        checkpoint_from_onnx(junk)
    # A valid graph whose weights belong to no registered net.
    other = tmp_path / "other.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 3, 3), (torch.rand(1, 3, 8, 8),), str(other), dynamo=False)
    with pytest.raises(ModelLoadError, match="does not hold the weights"):
        checkpoint_from_onnx(other)


def test_the_training_upsampler_is_the_served_one() -> None:
    """mobile2's x2 bilinear upsampling runs as a transposed convolution in training and as
    ``F.interpolate`` (ONNX Resize) when served: the same values, borders and odd sizes included, and
    the same gradient."""
    from service.core.stylize.nets.mobile2 import BilinearUp2

    up = BilinearUp2()
    x = torch.rand(2, 3, 7, 10, requires_grad=True)
    trained = up.train()(x)
    served = up.eval()(x)
    assert trained.shape == (2, 3, 14, 20) and torch.allclose(trained, served, atol=1e-6)
    g = torch.randn_like(served)
    (grad_trained,) = torch.autograd.grad(trained, x, g)
    (grad_served,) = torch.autograd.grad(served, x, g)
    assert torch.allclose(grad_trained, grad_served, atol=1e-5)


# Per net, the spread of the random weights that keeps its output varied and inside 0..255 (the deep
# un-normalised johnson2 saturates at mobile2's).
@pytest.mark.parametrize(("arch", "spread"), [("mobile2", 0.1), ("mobile2w", 0.1), ("johnson2", 0.02)])
def test_mobile2_exports_with_parity_at_odd_sizes_and_reads_back(
    arch: str, spread: float, tmp_path: Path
) -> None:
    """Every layer of mobile2 and johnson2 (stride-2 reflect convs, bilinear x2 upsampling, encoder-only
    instance norm) exports with parity at odd sizes; every weight is randomised, the zero-initialised
    residual convs too, so no layer is skipped by being the identity."""
    torch.manual_seed(3)
    net = build_net(arch).eval()
    with torch.no_grad():
        for module in net.modules():
            for name, p in module.named_parameters(recurse=False):
                norm_scale = isinstance(module, torch.nn.InstanceNorm2d) and name == "weight"
                p.copy_(torch.randn_like(p) * spread + (1.0 if norm_scale else 0.0))
        y = PaddedTransform(net)(torch.rand(1, 3, 67, 93) * 255)
    # Not a vacuous check: the output varies and is not clamped flat (measured std 13-14, all inside 0..255).
    assert float(y.std()) > 5 and float(((y > 0) & (y < 255)).float().mean()) > 0.9
    path = export_onnx(net, tmp_path / "m2.onnx")
    errors = parity_check(net, path, ((67, 93), (16, 16), (257, 383)))
    assert max(errors.values()) <= 1.0, errors
    ckpt = checkpoint_from_onnx(path)
    assert ckpt["arch"] == arch
    assert all(torch.equal(ckpt["model"][k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    ("order", "johnson"),
    [
        # a retrained style replaces its predecessor under the same model name (clients keep calling
        # "starry_night"); the johnson net keeps its own "-johnson" name beside it
        (("mobile", "johnson", "mobile2"), "johnson"),
        # johnson2 is johnson rebuilt without the droplet source: it replaces "<style>-johnson"
        (("johnson", "mobile2", "johnson2"), "johnson2"),
    ],
)
def test_a_retrained_net_takes_over_its_predecessors_name(
    tmp_path: Path, order: tuple[str, ...], johnson: str
) -> None:
    models = tmp_path / "models"
    opts = ExportOptions(
        name="starry_night", style_image=Path("van_gogh_starry_night.jpg"), parity_sizes=((33, 47),)
    )
    for arch in order:
        export_checkpoint(_checkpoint(tmp_path, arch), models, opts)
    entries = {e.name: (e.arch, e.file) for e in read_manifest(models)}
    assert entries == {
        "starry_night": ("mobile2", "starry_night.mobile2.onnx"),
        "starry_night-johnson": (johnson, f"starry_night.{johnson}.onnx"),
    }
