"""Transform networks: registry, shapes at odd sizes, the serving wrapper's padding and clamping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from service.core.errors import InvalidArgument, UnknownModel
from service.core.stylize.nets import PaddedTransform, build_net, check_input_size, list_nets, register_net


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # Tiny inputs: with two threads, synchronisation costs more than it saves on a shared 2-core runner.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registry_lists_both_and_rejects_unknown_and_duplicates() -> None:
    assert list_nets() == ["johnson", "mobile"]
    with pytest.raises(UnknownModel, match="johnson, mobile"):
        build_net("resnet")
    with pytest.raises(ValueError, match="twice"):
        register_net("mobile")(lambda: build_net("mobile"))


@pytest.mark.parametrize("arch", ["mobile", "johnson"])
@pytest.mark.parametrize("size", [(33, 47), (16, 16), (50, 19)])
def test_output_shape_equals_input_shape_at_odd_sizes(arch: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = PaddedTransform(build_net(arch)).eval()
    x = torch.rand(2, 3, *size) * 255
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 255.0


def test_padding_does_not_leak_into_the_crop() -> None:
    # The padded border is cropped away: the top-left of an odd-sized image is processed the same as the
    # same pixels inside a larger image of stride-aligned size, up to the instance-norm statistics, so
    # check instead that the wrapper is exactly the net on an already aligned size.
    torch.manual_seed(0)
    net = build_net("mobile").eval()
    x = torch.rand(1, 3, 32, 48) * 255
    with torch.no_grad():
        assert torch.equal(PaddedTransform(net)(x), net(x).clamp(0, 255))


@pytest.mark.parametrize("arch", ["mobile", "johnson"])
def test_a_flat_image_stays_flat_up_to_the_border(arch: str) -> None:
    # Zero padding inside the net makes the border rows and columns differ from the interior: a frame
    # around every stylised image. With reflection padding everywhere (and ICNR at the sub-pixel output),
    # a flat grey input gives a flat output, border included.
    torch.manual_seed(0)
    net = build_net(arch).eval()
    with torch.no_grad():
        y = net(torch.full((1, 3, 64, 96), 100.0))
    spread = (y - y.mean(dim=(2, 3), keepdim=True)).abs().amax()
    assert float(spread) < 1e-2, float(spread)


def test_mobile_is_much_smaller_than_johnson() -> None:
    count = {a: sum(p.numel() for p in build_net(a).parameters()) for a in ("mobile", "johnson")}
    assert count["mobile"] * 10 < count["johnson"]


def test_too_small_images_are_refused_with_a_typed_error() -> None:
    with pytest.raises(InvalidArgument, match="at least 16 px"):
        check_input_size(15, 100)
    check_input_size(16, 16)
