"""Registers the sqlite driver with Ommi; imports no database client."""
