"""attnslides' Pandoc filter: live attention figures computed by :mod:`engine` at build time.

One module per stage, in the order a block goes through them:

1. :mod:`filters.options`  the block kinds, their options (one registry), parsing into typed specs
2. :mod:`filters.compute`  specs → arrays, with the engine (imports torch)
3. :mod:`filters.render`   arrays → figures, one renderer per kind (imports matplotlib)
4. :mod:`filters.latex`    arrays → LaTeX matrices for the worked example (no heavy imports)
5. :mod:`filters.cache`    content-addressed cache of figures and their data
6. :mod:`filters.filter`   the panflute filter: prepare / action / finalize / main
7. :mod:`filters.build`    deck → pandoc → .tex → latexmk → PDF; :mod:`filters.cli` its commands

Importing this package, :mod:`filters.options`, :mod:`filters.cache` or :mod:`filters.filter`
imports neither torch nor matplotlib: a build whose figures are all cached never pays for them.
"""
