"""Command-line entry points: the ``glimpse`` command (``train/cli.py``) and its subcommands."""
