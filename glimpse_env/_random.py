"""Counter-based random numbers: every episode's draws are a pure function of a few integers.

The environments draw an episode (image, canvas layout, start location) from a 64-bit key
instead of a stateful generator. That lets the vector env draw a whole batch of episodes in a
few NumPy operations while sub-env ``i`` still sees exactly the episodes that a single env
seeded with ``seed + i`` sees, and lets each test/val canvas be a pure function of
``(split, index)``.

The mixing function is SplitMix64's finaliser (Steele, Lea and Flood, 2014), applied to
uint64 arrays with wrap-around arithmetic.
"""

from __future__ import annotations

import functools

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = (np.uint64(s) for s in (11, 27, 30, 31))
_TWO_POW_MINUS_53 = 2.0**-53


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection of uint64 arrays that scrambles every bit.

    Args:
        z: uint64 array of any shape.

    Returns:
        uint64 array of the same shape.
    """
    z = np.asarray(z, dtype=np.uint64)
    t = z >> _S30  # in place from here on: fewer temporaries
    t ^= z
    t *= _M1
    z = t >> _S27
    z ^= t
    z *= _M2
    t = z >> _S31
    t ^= z
    return t


def derive(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Derive a new key from a key and a counter (e.g. an episode number or image index).

    Args:
        key: uint64 ``(N,)``.
        counter: integer ``(N,)`` (non-negative).

    Returns:
        uint64 ``(N,)``.
    """
    return mix(mix(key) ^ (np.asarray(counter, dtype=np.uint64) * _GOLDEN))


def uniforms(key: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniform floats in [0, 1) per key.

    Args:
        key: uint64 ``(N,)``.
        n: number of draws per key.

    Returns:
        float64 ``(N, n)``.
    """
    bits = mix(np.asarray(key, dtype=np.uint64)[:, None] + _steps(n))
    bits >>= _S11
    return bits.astype(np.float64) * _TWO_POW_MINUS_53


@functools.lru_cache(maxsize=64)
def _steps(n: int) -> np.ndarray:
    """uint64 ``(n,)``: the Weyl sequence ``1, 2, .., n`` times the golden gamma."""
    steps = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
    steps.flags.writeable = False
    return steps


def integers(u: np.ndarray, high: int | np.ndarray) -> np.ndarray:
    """Map uniforms in [0, 1) to integers in ``0 .. high - 1`` (int64)."""
    return np.minimum((u * high).astype(np.int64), np.asarray(high) - 1)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """One SplitMix64 output for state ``x``: :func:`mix` of ``x`` plus the golden gamma.

    Args:
        x: uint64 array of any shape.

    Returns:
        uint64 array of the same shape.
    """
    with np.errstate(over="ignore"):
        return mix(np.asarray(x, dtype=np.uint64) + _GOLDEN)
