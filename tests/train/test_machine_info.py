"""``train/machine_info.py``: the CPU a measurement's JSON records (``glimpse compare``, the
speed benchmarks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import import_benchmark

from train import machine_info

# Two processors of a (shortened) Linux /proc/cpuinfo; only the first block is read.
CPUINFO = """\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu avx2 avx512f avx512_bf16 sha_ni

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: something else
flags\t\t: amx_bf16 amx_tile
"""


def test_parse_cpuinfo_reads_the_first_processor() -> None:
    info = machine_info.parse_cpuinfo(CPUINFO)
    assert info == {
        "model": "AMD EPYC",
        "vendor": "AuthenticAMD",
        "family": "25",
        "model_number": "17",
        "flags": {
            "avx2": True,
            "avx512f": True,
            "avx512_bf16": True,
            "amx_bf16": False,
            "amx_tile": False,
        },
    }


def test_parse_cpuinfo_of_an_empty_text_knows_nothing() -> None:
    info = machine_info.parse_cpuinfo("")
    assert info["model"] is None and info["vendor"] is None
    assert not any(info["flags"].values())


def test_cpu_info_without_proc_cpuinfo(tmp_path: Path) -> None:
    info = machine_info.cpu_info(tmp_path / "missing")
    assert info["flags"] == {} and info["vendor"] is None
    assert info["logical_cpus"] >= 1 and set(info) == {
        "model",
        "vendor",
        "family",
        "model_number",
        "flags",
        "logical_cpus",
        "machine",
    }


def test_cpu_info_reads_the_given_file(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = machine_info.cpu_info(path)
    assert info["model"] == "AMD EPYC" and info["flags"]["avx512_bf16"] is True


def test_the_benchmarks_import_it_as_a_sibling_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks/machine_info.py`` (``from machine_info import cpu_info`` in a script of
    that folder) is this module's functions."""
    script = import_benchmark("machine_info", monkeypatch)
    assert script.cpu_info is machine_info.cpu_info
    assert script.parse_cpuinfo is machine_info.parse_cpuinfo
