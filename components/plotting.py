"""Matplotlib without a screen, for the plots stages save."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (imported on first use, not at start-up)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot

    return matplotlib.pyplot


def save(figure, path: Path) -> Path:
    """Writes the figure to ``path`` (tight layout, 100 dpi) and frees it."""
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot().close(figure)
    return path
