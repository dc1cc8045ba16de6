"""Surfaces that translate outside input into calls on the host (console, chat adapters)."""
