"""Bridges to other libraries (optional extras): :mod:`st_gloss.integrations.setfit`."""
