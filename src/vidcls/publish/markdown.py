"""Markdown pieces shared by every document vidcls writes: the evaluation report, the model card, the audit."""

from __future__ import annotations


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; a `|` inside a cell is escaped so it cannot split the cell."""
    lines = [_row(header), _row(["---"] * len(header))] + [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def percent(value: float) -> str:
    """A 0-1 ratio as a percentage with one decimal."""
    return f"{100 * value:.1f}%"
