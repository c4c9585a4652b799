"""Bridges to other libraries (optional extras): `st_gloss.integrations.setfit`."""
