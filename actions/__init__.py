"""Rasa SDK actions: thin adapters onto the bot services."""

from bot.logging_setup import install_pii_masking

# The action server imports this package first: mask personal data in its logs from the start.
install_pii_masking()
