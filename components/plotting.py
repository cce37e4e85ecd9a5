"""Matplotlib without a screen, for the plots stages save."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (imported on first use, not at start-up)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot

    return matplotlib.pyplot
