"""``benchmarks/machine_info.py``: the CPU a benchmark JSON records."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import import_benchmark

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


def test_parse_cpuinfo_reads_the_first_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("machine_info", monkeypatch)
    info = script.parse_cpuinfo(CPUINFO)
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


def test_parse_cpuinfo_of_an_empty_text_knows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("machine_info", monkeypatch)
    info = script.parse_cpuinfo("")
    assert info["model"] is None and info["vendor"] is None
    assert not any(info["flags"].values())


def test_cpu_info_without_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = import_benchmark("machine_info", monkeypatch)
    info = script.cpu_info(tmp_path / "missing")
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


def test_cpu_info_reads_the_given_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = import_benchmark("machine_info", monkeypatch)
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = script.cpu_info(path)
    assert info["model"] == "AMD EPYC" and info["flags"]["avx512_bf16"] is True
