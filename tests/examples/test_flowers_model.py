"""ResNet34 shapes, in-process. The venv has no torch, so this module skips there (``importorskip``);
the same checks run under Debian's python3 in test_flowers_app.py, which does not skip in CI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.examples.flowers_support import FLOWERS

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_module() -> Iterator[ModuleType]:
    sys.path.insert(0, str(FLOWERS))
    try:
        import model

        yield model
    finally:
        sys.path.remove(str(FLOWERS))


def test_output_shape_and_size(model_module: ModuleType) -> None:
    net = model_module.resnet34().eval()
    with torch.no_grad():
        assert tuple(net(torch.zeros(2, 3, 224, 224)).shape) == (2, 5)
    assert sum(p.numel() for p in net.parameters()) == 21_287_237
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
