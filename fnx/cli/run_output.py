"""How `fnx run` shows results: tables for a handful of images, a line each for many, or JSON Lines / CSV as it goes."""

from __future__ import annotations

import csv
import json
import sys
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fnx.runtime.results import Result

TABLES_UP_TO = 8  # more results than this are printed one line each


class Writer:
    """Receives results in order; `close()` flushes what was buffered."""

    def __init__(self, console: Console, fmt: str, out: IO[str] | None = None):
        self.console, self.fmt, self.out = console, fmt, out or sys.stdout
        self.buffer: list[Result] = []
        self.lines = False
        if fmt == "csv":
            self.csv = csv.writer(self.out)
            self.csv.writerow(["index", "source", "label", "class", "score", "error"])

    def add(self, r: Result) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(r.to_dict()) + "\n")
            self.out.flush()
        elif self.fmt == "csv":
            p = r.prediction
            self.csv.writerow([r.index, r.source, p.labels[0] if p else "", p.indices[0] if p else "",
                               f"{p.scores[0]:.6f}" if p else "", r.error or ""])
            self.out.flush()
        elif self.fmt == "json":
            self.buffer.append(r)
        elif self.lines:
            self._line(r)
        else:
            self.buffer.append(r)
            if len(self.buffer) > TABLES_UP_TO:  # many inputs: switch to a line each, as they come
                self.lines = True
                for b in self.buffer:
                    self._line(b)
                self.buffer = []

    def _line(self, r: Result) -> None:
        if r.prediction is not None:
            p = r.prediction
            self.console.print(f"{escape(r.source)}  [bold]{escape(p.labels[0])}[/] {p.scores[0]:.3f}", highlight=False,
                               soft_wrap=True)

    def close(self) -> None:
        if self.fmt == "table" and not self.lines:
            for r in self.buffer:
                if r.prediction is not None:
                    self.console.print(_table(r))


def _table(r: Result) -> Table:
    table = Table(title=escape(r.source), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    for rank, (label, score) in enumerate(zip(r.prediction.labels, r.prediction.scores), 1):
        table.add_row(str(rank), escape(label), f"{score:.4f}")
    return table
