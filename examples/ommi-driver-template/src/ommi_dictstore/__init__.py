"""ommi-dictstore: an example Ommi driver keeping rows in Python dicts, saved to a JSON file.

::

    import ommi

    async with ommi.connect("dictstore:///app.json") as db:
        ...

or, without the URL registry, ``Ommi(DictStoreDriver.connect("app.json"))``.
"""

from ommi_dictstore.driver import DictStoreDriver

__all__ = ["DictStoreDriver"]
