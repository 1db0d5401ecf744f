"""Command-line arguments of tiny training runs, shared by the CLI tests."""

from __future__ import annotations

#: A tiny RAM (same code paths as the paper's sizes) trained for 40 iterations of 16,
#: checkpointed every 5.
TINY_RAM = [
    "--batch-size", "16",
    "--epochs", str(40 * 16 / 50_000),
    "--glimpse-hidden", "16",
    "--location-hidden", "16",
    "--glimpse-out", "32",
    "--core-hidden", "32",
    "--eval-every", "20",
    "--eval-images", "64",
    "--test-images", "100",
    "--checkpoint-every", "5",
    "--log-every", "5",
    "--threads", "1",
    "--no-progress",
]  # fmt: skip
