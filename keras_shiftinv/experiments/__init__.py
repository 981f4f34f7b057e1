"""Experiments built on the package: the small-scale Table 1 and friends."""
