"""plughost.cli."""
