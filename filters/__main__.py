"""``python -m filters`` runs the Pandoc JSON filter (same as ``attnslides-filter``)."""

from filters.pandoc.filter import main

main()
