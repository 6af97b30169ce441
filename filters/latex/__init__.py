"""Running LaTeX and reading its log, as a rebuild wants it: :mod:`~filters.latex.runner` (as few
passes as a change needs, from a precompiled preamble; a watch's :class:`~filters.latex.runner.Session`),
:mod:`~filters.latex.frames` (only the frames that changed), :mod:`~filters.latex.passes` (one pass,
bounded), :mod:`~filters.latex.env` (safe and reproducible), :mod:`~filters.latex.log` (which frame
a message is about). ``preamble.tex`` goes into every LaTeX deck, ``sandbox.lua`` limits LuaLaTeX's
Lua. It imports only :mod:`filters.util` and :mod:`filters.errors`: nothing of pandoc, the filter or
the cache."""
