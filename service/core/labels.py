"""ImageNet-1k class names, from torchvision's bundled metadata (no download)."""

from __future__ import annotations

from functools import lru_cache

from service.core.errors import InvalidArgument


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def resolve_class(target: int | str, labels: list[str] | None = None) -> int:
    """Turn a class index or a label name (case-insensitive, exact or unique prefix) into an index."""
    names = labels if labels is not None else imagenet_labels()
    if isinstance(target, int) or (isinstance(target, str) and target.strip().lstrip("-").isdigit()):
        idx = int(target)
        if not 0 <= idx < len(names):
            raise InvalidArgument(f"Class index {idx} is out of range 0..{len(names) - 1}.")
        return idx
    key = target.strip().lower()
    exact = [i for i, n in enumerate(names) if n.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if n.lower().startswith(key)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(names[i] for i in partial[:8])
        raise InvalidArgument(f"Class {target!r} is ambiguous: {shown}{' ...' if len(partial) > 8 else ''}.")
    raise InvalidArgument(f"Unknown class {target!r}: give an ImageNet class index 0..999 or a label name.")
