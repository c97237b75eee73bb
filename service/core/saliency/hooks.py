"""Hooks as resources: registered on entry, removed on exit, also when the body raises.

A hook left behind on a shared backbone would silently change every later forward or backward pass of
every other request, so no method registers a hook outside one of these context managers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


@contextmanager
def removing(handles: list[RemovableHandle]) -> Iterator[None]:
    """Remove every handle in ``handles`` when the block ends (the list may grow inside the block)."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()


def _positive_grad_input(
    module: nn.Module, grad_input: tuple[Tensor | None, ...], grad_output: tuple[Tensor | None, ...]
) -> tuple[Tensor | None, ...]:
    # grad_input is already grad_output masked by the forward activation (x > 0, and x < 6 for ReLU6);
    # clamping it also masks by the sign of the incoming gradient: exactly guided backprop's rule.
    return tuple(g.clamp(min=0) if g is not None else None for g in grad_input)


def guided_relu_modules(model: nn.Module) -> list[nn.Module]:
    """Every ReLU / ReLU6 module of ``model`` (the backbones keep each activation a distinct module)."""
    return [m for m in model.modules() if isinstance(m, nn.ReLU | nn.ReLU6)]


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Within the block, every ReLU / ReLU6 of ``model`` passes back only positive gradients.

    Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net" (arXiv:1412.6806):
    guided backpropagation zeroes the gradient where the forward input was negative *or* the backward
    signal is negative. Yields the number of hooked modules.
    """
    handles: list[RemovableHandle] = []
    with removing(handles):
        modules = guided_relu_modules(model)
        for module in modules:
            handles.append(module.register_full_backward_hook(_positive_grad_input))
        yield len(modules)


def hook_counts(model: nn.Module) -> dict[str, int]:
    """Hooks currently registered on any module of ``model`` (all zero outside a method's run)."""
    counts = {"forward": 0, "forward_pre": 0, "backward": 0, "backward_pre": 0}
    for m in model.modules():
        counts["forward"] += len(m._forward_hooks)
        counts["forward_pre"] += len(m._forward_pre_hooks)
        counts["backward"] += len(m._backward_hooks)
        counts["backward_pre"] += len(m._backward_pre_hooks)
    return counts
