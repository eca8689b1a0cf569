"""`fnx bench all`: one model through every format x precision x engine here, ranked. Sits above the exporter
(which it drives) and the runtime and evaluation (which time and score each row); nothing below imports it."""

from fnx.ranking.sweep import bench_all, combinations

__all__ = ["bench_all", "combinations"]
