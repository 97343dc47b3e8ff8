"""Figure files with the same bytes for the same figure: every matplotlib figure etio writes goes
through :func:`save_figure`.

matplotlib stamps an SVG with the time it was written (``dc:date``) and names its clip paths and
markers from a random salt; a PNG carries the writing software's version. Here the date and the
software entry are left out and the salt is fixed, so that rerunning a command rewrites a figure
byte for byte.
"""

from __future__ import annotations

from pathlib import Path

#: matplotlib settings every figure is written under: fixed SVG ids, text kept as text.
FIGURE_RC = {"svg.fonttype": "none", "svg.hashsalt": "etio"}
#: Metadata entries left out, per format (``None`` drops an entry matplotlib would write).
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None}}


def save_figure(fig, path: Path | str, *, rc: dict | None = None, **kwargs) -> Path:
    """Write ``fig`` (a matplotlib figure) to ``path``, in the format its suffix names, reproducibly."""
    import matplotlib

    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.lstrip(".").lower()
    with matplotlib.rc_context({**FIGURE_RC, **(rc or {})}):
        fig.savefig(path, format=fmt, metadata=_METADATA.get(fmt), **kwargs)
    return path
