"""``train.validation``: number flags with bounds, and the counts in the trainers' headers."""

from __future__ import annotations

import argparse

import pytest

from train.validation import counted, int_list, number_type


def test_counted_is_singular_for_one_only() -> None:
    assert counted(1, "iteration") == "1 iteration"
    assert counted(0, "update") == "0 updates"
    assert counted(3906, "iteration") == "3,906 iterations"


def test_number_type_names_the_bounds() -> None:
    positive = number_type(int, ge=1)
    assert positive("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1"):
        positive("0")
    with pytest.raises(argparse.ArgumentTypeError):
        positive("x")


def test_int_list() -> None:
    assert int_list("64, 64") == (64, 64) and int_list("") == ()
    for bad in ("0,1", "1,a"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integers"):
            int_list(bad)
