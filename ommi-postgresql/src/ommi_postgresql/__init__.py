"""Ommi's postgresql driver."""
