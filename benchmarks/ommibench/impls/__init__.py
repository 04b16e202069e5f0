"""One module per implementation under test; each class implements :class:`~ommibench.impls.base.Implementation`."""
