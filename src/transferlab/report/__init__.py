"""Reports of a finished run: a self-contained HTML file and a terminal summary.

Both take the ``transferlab.run/1`` results dict as written to ``results.json``.
"""

from .html import render_html, write_html
from .terminal import print_summary, summary_table

__all__ = ["render_html", "write_html", "summary_table", "print_summary"]
