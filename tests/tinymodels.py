"""Tiny seeded style models for tests: real ONNX files that obey the graph I/O contract.

``write_tiny_models(folder)`` writes, for each name, a 2-conv network with an instance norm (the layer that
makes tiling non-trivial, as in the real transform nets), its model card and a manifest entry. The graphs
are built directly with ``onnx.helper`` (no exporter run), so a folder of models takes milliseconds and the
bytes are the same on every machine.

Graph contract (docs/ARCHITECTURE.md): input ``input`` float32 (N, 3, H, W) RGB in [0, 255]; output
``output`` same shape, clamped to [0, 255] in the graph; N, H and W dynamic.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.core.stylize.manifest import ManifestEntry, ModelCard, add_to_manifest, sha256_file, write_card

OPSET = 17
HIDDEN = 8  # channels of the hidden layer


def tiny_model(seed: int) -> onnx.ModelProto:
    """out = clip(255 * (0.6 * x + 0.4 * sigmoid(conv(relu(instnorm(conv(x)))))), 0, 255) with x = in/255.

    Mixing in the input keeps the output recognisable (like a stylised photo); the instance norm makes the
    output depend on image-wide statistics, which is what tiling has to cope with.
    """
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 0.5, (HIDDEN, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0.0, 0.1, (HIDDEN,)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, (HIDDEN,)).astype(np.float32)
    beta = rng.normal(0.0, 0.2, (HIDDEN,)).astype(np.float32)
    w2 = rng.normal(0.0, 0.3, (3, HIDDEN, 3, 3)).astype(np.float32)
    b2 = rng.normal(0.0, 0.1, (3,)).astype(np.float32)
    consts = {
        "w1": w1,
        "b1": b1,
        "gamma": gamma,
        "beta": beta,
        "w2": w2,
        "b2": b2,
        "inv255": np.array(1.0 / 255.0, np.float32),
        "k255": np.array(255.0, np.float32),
        "keep": np.array(0.6, np.float32),
        "mix": np.array(0.4, np.float32),
        "zero": np.array(0.0, np.float32),
    }
    nodes = [
        helper.make_node("Mul", ["input", "inv255"], ["x"]),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("InstanceNormalization", ["c1", "gamma", "beta"], ["n1"], epsilon=1e-5),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s"]),
        helper.make_node("Mul", ["x", "keep"], ["xk"]),
        helper.make_node("Mul", ["s", "mix"], ["sm"]),
        helper.make_node("Add", ["xk", "sm"], ["y"]),
        helper.make_node("Mul", ["y", "k255"], ["y255"]),
        helper.make_node("Clip", ["y255", "zero", "k255"], ["output"]),
    ]
    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes,
        "tiny_style",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="atelier")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model


def reference_output(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Run a tiny model with onnx's reference evaluator (independent of onnxruntime)."""
    from onnx.reference import ReferenceEvaluator

    return np.asarray(ReferenceEvaluator(model).run(None, {"input": x.astype(np.float32)})[0])


def write_tiny_models(
    models_dir: Path,
    names: Iterable[str] = ("tiny_a", "tiny_b"),
    corrupt: Iterable[str] = (),
    mismatch: Iterable[str] = (),
) -> Path:
    """Write tiny models, their cards and ``manifest.json`` into ``models_dir``; return ``models_dir``.

    ``corrupt`` names get a file of garbage bytes (whose sha256 *is* recorded, so the failure is the
    loader's); ``mismatch`` names get a valid file with a wrong sha256 in the manifest. Names listed in
    either but not in ``names`` are added.
    """
    folder = Path(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    corrupt, mismatch = set(corrupt), set(mismatch)
    all_names = list(dict.fromkeys([*names, *sorted(corrupt), *sorted(mismatch)]))
    for name in all_names:
        file, card_file = f"{name}.tiny.onnx", f"{name}.tiny.json"
        path = folder / file
        if name in corrupt:
            path.write_bytes(b"this is not an onnx model \x00\xff" * 8)
        else:
            path.write_bytes(tiny_model(zlib.crc32(name.encode())).SerializeToString())
        digest = sha256_file(path)
        card = ModelCard(
            name=name,
            arch="tiny",
            version="1",
            title=f"Tiny test style {name}",
            artist="Atelier tests",
            year="2024",
            licence="CC0",
            training={"note": "random weights for tests"},
            opset=OPSET,
            onnx_sha256=digest,
            backbone="none",
            created="2024-01-01T00:00:00Z",
        )
        write_card(folder / card_file, card)
        recorded = "0" * 64 if name in mismatch else digest
        entry = ManifestEntry(
            name=name, style=name, arch="tiny", version="1", file=file, sha256=recorded, card=card_file
        )
        add_to_manifest(folder, entry)
    return folder
