"""Surfaces that translate outside input into calls on the host (console, OneBot)."""
