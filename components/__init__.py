"""Pure layout builders: cards, the cytoscape microgrid, figures, tables. No I/O, no callbacks."""
