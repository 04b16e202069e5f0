"""Ommi testkit."""
