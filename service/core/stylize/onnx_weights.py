"""Training weights back out of an exported model, so a shipped style can be fine-tuned further.

``export_onnx`` writes the net's parameters as ONNX initializers named after the PyTorch state dict of
the ``PaddedTransform`` wrapper (``net.<key>``). A training checkpoint is usually not kept next to a
shipped model (checkpoints stay out of the repository), so ``atelier train --init-from X.onnx`` reads the
weights from the graph instead. The architecture is the registered one whose state dict matches the
initializers key for key and shape for shape; anything else (a graph from another exporter, an fp16
copy, a foreign model) is refused with ``ModelLoadError`` rather than loaded half-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.nets import build_net, list_nets

PREFIX = "net."  # PaddedTransform keeps the transform net under the attribute ``net``


def read_initializers(path: str | Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(f"Model file {p} does not exist.")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # truncated or not ONNX: say so instead of a protobuf traceback
        raise ModelLoadError(f"Could not read ONNX model {p}: {exc}") from None
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def checkpoint_from_onnx(path: str | Path) -> dict[str, Any]:
    """A training checkpoint (``arch`` and ``model`` entries, as ``train.load_checkpoint`` returns) holding
    the weights of the exported transform net in ``path``."""
    found = read_initializers(path)
    weights = {k.removeprefix(PREFIX): v for k, v in found.items() if k.startswith(PREFIX)}
    for arch in list_nets():
        state = build_net(arch).state_dict()
        if set(state) != set(weights):
            continue
        if any(tuple(state[k].shape) != weights[k].shape for k in state):
            continue
        if any(weights[k].dtype != np.float32 for k in state):
            raise ModelLoadError(f"{path} holds non-float32 weights (an fp16 copy?); use the fp32 graph.")
        model = {k: torch.from_numpy(weights[k].copy()) for k in state}
        return {"arch": arch, "model": model, "source": str(path)}
    if "encoder.1.gamma" in weights:  # a multi-style net: not in the registry, its size is its style count
        from service.core.stylize.export_multi import multi_checkpoint_from_onnx

        return multi_checkpoint_from_onnx(path)
    raise ModelLoadError(
        f"{path} does not hold the weights of any transform net ({', '.join(list_nets())}) as exported by "
        "atelier export."
    )
