"""The pandoc every stage runs: the one inside ``pypandoc-binary`` (pandoc 3.x), never whichever
pandoc is on PATH (Debian's 2.17 cannot read the Figures the filter writes)."""

from __future__ import annotations

import functools


def pandoc_path() -> str:
    """The pandoc shipped in ``pypandoc-binary``."""
    import pypandoc

    return pypandoc.get_pandoc_path()


@functools.cache
def pandoc_version() -> str:
    """The version of that pandoc (what a build tells its filter, as pandoc tells its filters in
    ``PANDOC_VERSION``)."""
    import pypandoc

    return str(pypandoc.get_pandoc_version())
