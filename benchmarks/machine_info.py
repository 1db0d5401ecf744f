"""Which CPU a benchmark ran on: :mod:`train.machine_info`, under the name the scripts of
this folder import as a sibling module (``from machine_info import cpu_info``)."""

from __future__ import annotations

from train.machine_info import MATMUL_FLAGS, cpu_info, parse_cpuinfo

__all__ = ["MATMUL_FLAGS", "cpu_info", "parse_cpuinfo"]
