"""Registers the mongodb driver with Ommi; imports no database client."""
