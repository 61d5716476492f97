"""OmegaConf resolvers that the framework's config files use."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf


def derive_seed(*parts: int | str) -> int:
    """Return a seed in [0, 2**31) that depends on every part, in order.

    Used to give each (seed, repeat) pair its own active-learning randomness,
    unrelated to that of its neighbours, where `seed + repeat` would make
    seed 0, repeat 1 identical to seed 1, repeat 0.
    """
    text = ":".join(str(part) for part in parts)
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def register() -> None:
    """Register the resolvers once; later calls do nothing."""
    if not OmegaConf.has_resolver("derive_seed"):
        OmegaConf.register_new_resolver("derive_seed", derive_seed)
