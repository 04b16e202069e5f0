"""Shared set-up of the testkit's own tests."""

# pytester runs small pytest sessions in a temporary directory: the tests of
# the testkit's machinery (markers, skips, strict mode) use it.
pytest_plugins = ["pytester"]
