"""attnslides' Pandoc filter and everything that runs it: live attention figures computed by
:mod:`engine` while a deck builds.

One sub-package per stage, each importing only the ones listed after it:

* :mod:`filters.cli`       the ``attnslides`` command: build, watch, new, options, clean
* :mod:`filters.pipeline`  deck → pandoc → filter → pandoc's writer → LaTeX → PDF, and every output format
* :mod:`filters.pandoc`    the panflute filter: prepare / action / finalize; the settings a build hands it
* :mod:`filters.workers`   computing the blocks that miss the cache, in warm processes, with time limits
* :mod:`filters.kinds`     one file per kind of live block (the registry)
* :mod:`filters.cache`     keys (a digest of the code a kind runs) and the store of entries
* :mod:`filters.figures`   drawing, attention heatmaps, a block's entry, the ``.run`` sandbox
* :mod:`filters.blocks`    options, settings, the ``Kind`` record, the figures' words per language
* :mod:`filters.latex`     running LaTeX and reading its log: knows nothing of pandoc, the filter or the cache
* :mod:`filters.util`      atomic files, names, child processes; and :mod:`filters.errors`

Importing this package, the registry, the options, the cache or the filter imports neither torch
nor matplotlib: a build whose figures are all cached never pays for them.
"""
