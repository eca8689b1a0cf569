"""What benchmarks hand back and how it is shown: Table, Section, number formatting, Markdown and rich tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The paper's numbers (Chen et al., CVPR 2023), quoted beside ours: PyTorch eager, BN fused, batch 1,
# one thread of an Intel i9-9900X.
PAPER_CPU_MS = {"fasternet_t0": 9.2, "fasternet_t1": 17.7, "fasternet_t2": 33.5, "fasternet_s": 71.2,
                "fasternet_m": 129.5, "fasternet_l": 219.5, "mobilevit_xxs": 30.8}
PAPER_TABLE1_GFLOPS = {"Conv": 71.9, "GConv": 25.9, "DWConv": 6.4, "PConv": 39.9}


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Section:
    """What one benchmark hands back: tables, figures, prose and the headline numbers."""

    name: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (path relative to the doc, caption)
    notes: list[str] = field(default_factory=list)
    headline: dict = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0
    other_load: float | None = None


def f(x, digits: int = 1, suffix: str = "") -> str:
    """Format a number for a table ('—' for missing)."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}{suffix}"


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.{digits}f}x"


def short_error(e: BaseException, n: int = 200) -> str:
    """One line of an exception: its type and message (the middle cut out when long, the end kept: C++ errors say
    what went wrong last)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if len(msg) > n:
        msg = msg[: n // 3] + " … " + msg[-(2 * n) // 3:]
    return f"{type(e).__name__}: {msg}"


def act_name(name: str) -> str:
    from fnx.models import get_variant

    return {"gelu": "GELU", "relu": "ReLU"}.get(get_variant(name).act, get_variant(name).act)


def pretty(name: str) -> str:
    return name.replace("fasternet_", "FasterNet-").upper().replace("FASTERNET-", "FasterNet-")


def _cell(c) -> str:
    return str(c).replace("|", "\\|")


def markdown_table(t: Table) -> str:
    head = "| " + " | ".join(_cell(h) for h in t.headers) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(t.headers))) + "|"
    rows = ["| " + " | ".join(_cell(c) for c in r) + " |" for r in t.rows]
    out = [f"**{t.title}**", "", head, sep, *rows]
    if t.note:
        out += ["", t.note]
    return "\n".join(out)


def print_table(t: Table) -> None:
    try:
        from rich.console import Console
        from rich.table import Table as RTable

        rt = RTable(title=t.title, title_justify="left")
        for i, h in enumerate(t.headers):
            rt.add_column(h, justify="left" if i == 0 else "right")
        for r in t.rows:
            rt.add_row(*[str(c) for c in r])
        Console(width=160).print(rt)
        if t.note:
            print(t.note)
    except ImportError:
        print(markdown_table(t))
    print()


def plt():
    """matplotlib.pyplot on the Agg backend (None if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot

        return pyplot
    except ImportError:
        return None


# A section measured on another machine (a lent GPU, the other CPU kind) and pasted by hand carries this mark right
# under its heading; a full run rewrites the report and keeps such sections as they are.
PASTED = "<!-- pasted: measured on another machine; `python -m benchmarks` keeps this section as it is -->"


def pasted_sections(text: str) -> dict[str, str]:
    """Return {heading: section text} of the `## ` sections of a report that carry the PASTED mark."""
    found = {}
    for part in ("\n" + text).split("\n## ")[1:]:
        heading = part.split("\n", 1)[0]
        if PASTED in part:
            found[heading] = "## " + part.rstrip() + "\n"
    return found


def keep_pasted(new: str, old: str | None) -> str:
    """Return the new report with the old one's pasted sections appended, where the new one has no such heading."""
    if not old:
        return new
    have = {line[3:] for line in new.splitlines() if line.startswith("## ")}
    kept = [body for heading, body in pasted_sections(old).items() if heading not in have]
    return new.rstrip() + "\n\n" + "\n".join(kept) if kept else new
