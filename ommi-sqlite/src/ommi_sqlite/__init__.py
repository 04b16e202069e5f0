"""Ommi's sqlite driver."""
