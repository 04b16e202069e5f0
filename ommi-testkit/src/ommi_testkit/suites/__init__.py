"""The conformance suite, split by area."""
