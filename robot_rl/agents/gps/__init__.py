"""Guided policy search."""
