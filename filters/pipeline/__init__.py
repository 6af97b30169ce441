"""A deck made into what a lecturer hands out: :mod:`~filters.pipeline.build` (deck → pandoc → the
filter → pandoc's writer, for every format; the deck read once, the filter handed its settings as a
value), :mod:`~filters.pipeline.pdf` (LaTeX's run and its log as slides), :mod:`~filters.pipeline.reveal`
(a reveal.js deck that opens offline), :mod:`~filters.pipeline.pandocargs` (the lecturer's own pandoc
options), :mod:`~filters.pipeline.errors` (a failed build, reported in one place)."""
