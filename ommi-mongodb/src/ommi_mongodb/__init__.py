"""Ommi's mongodb driver."""
