"""Registers the postgresql driver with Ommi; imports no database client."""
