"""Counter-based random numbers: value = f(key, counter), computed in bulk with no state.

Why not torch.Generator: sound i of a dataset must depend only on (seed, i), whatever the
batch size, shard or block size, and noise must continue seamlessly across streamed blocks.
A stateless hash of (key, counter) gives exactly that, vectorised, on any device.
"""
from __future__ import annotations

import hashlib

import torch

_MASK31 = (1 << 31) - 1
_MASK32 = (1 << 32) - 1
# lowbias32's multipliers and the key salt; native/noise.h gets them from here (C_CONSTANTS).
MIX_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)
SALT_MULTIPLIER = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser (lowbias32) on int64 tensors holding values < 2**32."""
    x = x ^ (x >> 16)
    x = (x * MIX_MULTIPLIERS[0]) & _MASK32
    x = x ^ (x >> 15)
    x = (x * MIX_MULTIPLIERS[1]) & _MASK32
    x = x ^ (x >> 16)
    return x


def stable_seed(*parts) -> int:
    """Deterministic 31-bit seed from any printable parts (not Python's salted hash())."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & _MASK31


def item_keys(seed: int, index: torch.Tensor) -> torch.Tensor:
    """Per-item int64 keys (< 2**32) from a run seed and int64 item indices: key i depends
    only on (seed, index[i]), whatever the batch it is drawn in."""
    return _mix32(_mix32(torch.full_like(index, seed & _MASK32)) ^ index)


def uniform(key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Uniform floats in [0, 1) from int64 `key` and `counter` (broadcast together)."""
    key = key.to(torch.int64) & _MASK32
    counter = counter.to(torch.int64) & _MASK32
    x = _mix32(_mix32(key) ^ counter)
    x = _mix32(x ^ (key * SALT_MULTIPLIER & _MASK32))
    return (x >> 8).to(torch.float32) * (1.0 / (1 << 24))


def normal(key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Standard normal floats by Box-Muller on two decorrelated uniform streams."""
    u1 = uniform(key, 2 * counter).clamp_min(1e-7)
    u2 = uniform(key, 2 * counter + 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * torch.pi * u2)
