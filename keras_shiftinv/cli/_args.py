"""Argument types shared by the `shiftinv` subcommands."""

import argparse

INT64_MAX = 2**63 - 1  # the largest integer a flag takes (TF Serving's version numbers are int64)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    if value > INT64_MAX:
        raise argparse.ArgumentTypeError(f"expected a positive integer of at most {INT64_MAX} (int64), got {value}")
    return value
