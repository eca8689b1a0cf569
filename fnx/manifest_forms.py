"""The manifest's record of how an int8 artifact's form was chosen (part of fnx.manifest's contract; torch-free).

`Calibration.forms` holds an `Int8FormChoice`: what was asked (`auto` or a form's name), what was chosen and how
(measured here, a target's rule for `--target`, as asked, the target's default for `--int8-form default`, or the
guard's fallback), why, and every candidate's
figures (`Int8FormTrial`): latency on this machine, held-out cosine and top-1 agreement, and whether it held the bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fnx.records import Record

HOW = ("measured", "rule", "asked", "default", "fallback")  # how the form was chosen


@dataclass
class Int8FormTrial(Record):
    """One candidate form measured all-int8: its median latency (ms, batch of the artifact) at `threads` on this
    machine and its median in each round of the interleaved timing (rounds alternate the candidates, so round k of
    two candidates saw the same load), its held-out figures against fp32 and whether it held the guard's bound."""

    form: str
    description: str
    latency_ms: float | None = None
    round_ms: list[float] = field(default_factory=list)
    cosine_min: float | None = None
    top1_agreement: float | None = None
    top1_drop_points: float | None = None
    passed: bool = False
    why_not: str | None = None


@dataclass
class Int8FormChoice(Record):
    """How the artifact's int8 form was chosen: asked (`auto` or a name), chosen, how (one of HOW) and why, with
    every candidate's figures when they were measured (and the seconds the measuring took)."""

    asked: str
    chosen: str
    how: str
    reason: str
    threads: int | None = None
    seconds: float | None = None
    candidates: list[Int8FormTrial] = field(default_factory=list)
