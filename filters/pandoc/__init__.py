"""The Pandoc filter (panflute's skeleton): :mod:`~filters.pandoc.filter` (prepare / action /
finalize / main), :mod:`~filters.pandoc.settings` (what a build hands it, and the deck's settings
read once), :mod:`~filters.pandoc.document` (slides, titles, live blocks), :mod:`~filters.pandoc.parse`
(each block into its options), :mod:`~filters.pandoc.output` (Figures per format, captions),
:mod:`~filters.pandoc.checks` (the document's checks), :mod:`~filters.pandoc.scan` (live blocks in a
deck's Markdown text, without pandoc). This package's own import loads nothing: ``make gpu-check``
uses :mod:`~filters.pandoc.scan` on machines without panflute."""
