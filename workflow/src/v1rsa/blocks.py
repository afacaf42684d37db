"""The layout of the normative CNN's conv blocks, without torch: module names and sizes.

:class:`v1rsa.normative.TiltCNN` stacks ``n_blocks`` blocks of conv → ReLU → max-pool before its
fully-connected layers. The first block's modules are ``conv``, ``conv_norm`` and ``pool`` (the
course's names); block b ≥ 2 adds ``conv{b}``, ``conv{b}_norm`` and ``pool{b}``. The workflow
plans a family of networks of several depths (their layers, whether the image can take the
depth) from here, so that building the DAG does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The module names of the first conv block, in the order the block runs them.
BLOCK_MODULES = ("conv", "conv_norm", "pool")


def block_module(name: str, block: int) -> str:
    """The name of a first-block module (``conv``, ``conv_norm``, ``pool``) in block ``block``
    (1-based): ``conv`` → ``conv``, ``conv2``, ``conv3``…; ``conv_norm`` → ``conv2_norm``."""
    if name not in BLOCK_MODULES:
        raise ValueError(f"{name!r} is not a module of a conv block {BLOCK_MODULES}")
    if block == 1:
        return name
    return f"conv{block}_norm" if name == "conv_norm" else f"{name}{block}"


def block_layers(layers: Sequence[str], n_blocks: int) -> list[str]:
    """The layers to record in a network of ``n_blocks`` blocks, by depth.

    layers: names of a one-block network (e.g. ``["conv", "pool", "fc", "out"]``): each block
    module among them is read in every block, then the others (fc, out) after the last block.
    ``block_layers(["conv", "pool", "fc", "out"], 2)`` → conv, pool, conv2, pool2, fc, out.
    """
    per_block = [name for name in layers if name in BLOCK_MODULES]
    head = [name for name in layers if name not in BLOCK_MODULES]
    return [block_module(name, block) for block in range(1, n_blocks + 1)
            for name in per_block] + head


def pooled_shape(image_shape: Sequence[int], pool_size: int, n_blocks: int) -> tuple[int, int]:
    """(H, W) pixels after ``n_blocks`` max-pools of ``pool_size`` (remainders dropped, as
    ``MaxPool2d``; the convs keep the size). Raises ``ValueError`` when a block would leave no
    pixel."""
    height, width = (int(v) for v in image_shape)
    for block in range(1, n_blocks + 1):
        height, width = height // pool_size, width // pool_size
        if height < 1 or width < 1:
            raise ValueError(
                f"{n_blocks} block(s) of pool_size {pool_size} leave no pixel of the "
                f"{int(image_shape[0])} × {int(image_shape[1])} image after block {block}; use "
                "fewer blocks or a smaller pool_size")
    return height, width
