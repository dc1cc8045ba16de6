"""Surfaces that translate outside input into calls on the host (OneBot, console …)."""
