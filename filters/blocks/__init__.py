"""What a live block is, before anything is computed: its options (value parsers in
:mod:`~filters.blocks.parsers`, declared and parsed in :mod:`~filters.blocks.options`), the
document-wide settings of the ``attnslides:`` metadata (:mod:`~filters.blocks.settings`), the
:class:`~filters.blocks.kind.Kind` record every kind's file fills in, and the words figures share in
each language (:mod:`~filters.blocks.labels`). Nothing here imports torch, matplotlib or panflute."""
