"""The ``attnslides`` command (:mod:`~filters.cli.main`): ``build``, ``watch`` (:mod:`~filters.cli.watch`,
rebuilding on save with a warm LaTeX session), ``new`` (:mod:`~filters.cli.starter`), ``options``,
``clean``."""
