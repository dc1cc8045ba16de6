"""plughost.core."""
