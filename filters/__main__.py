"""``python -m filters`` runs the Pandoc JSON filter (same as ``attnslides-filter``)."""

from filters.filter import main

main()
