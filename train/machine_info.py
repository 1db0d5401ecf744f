"""Which CPU a measurement ran on, for the JSON that records it.

Used by ``glimpse compare`` and by the speed benchmarks under ``benchmarks/``. The 2-core
machine these benchmarks were recorded on is not always the same host CPU: on
some days the training step's bfloat16 products ran several times faster than on others
(a CPU with AMX against one without), so the throughput JSONs say which CPU they measured.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: CPU flags (as ``/proc/cpuinfo`` names them) that decide the speed of training products.
MATMUL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """The CPU of a Linux ``/proc/cpuinfo`` text.

    Args:
        text: the file's contents (its first processor's block is read).

    Returns:
        ``model`` (the ``model name`` field), ``vendor`` (``vendor_id``), ``family`` and
        ``model_number`` (``cpu family`` and ``model``: a virtual machine's model name may
        omit the generation), each None where missing, and ``flags``: for each of
        :data:`MATMUL_FLAGS`, whether the CPU has it.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:  # end of the first processor's block
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name"),
        "vendor": fields.get("vendor_id"),
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "flags": {flag: flag in flags for flag in MATMUL_FLAGS},
    }


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU this process runs on.

    Args:
        cpuinfo: the Linux CPU description to read; where it does not exist (not Linux),
            ``model`` is ``platform.processor()`` and no flags are known.

    Returns:
        ``model``, ``vendor``, ``family``, ``model_number`` and ``flags`` (see
        :func:`parse_cpuinfo`; ``flags`` is empty when unknown), ``logical_cpus``
        (``os.cpu_count()``) and ``machine`` (``platform.machine()``).
    """
    try:
        info = parse_cpuinfo(cpuinfo.read_text())
    except OSError:
        model = platform.processor() or None
        info = {"model": model, "vendor": None, "family": None, "model_number": None, "flags": {}}
    return {**info, "logical_cpus": os.cpu_count(), "machine": platform.machine()}
