"""plughost.bot."""
