"""The SQL compiler shared by SQL drivers: AST in, SQL text and parameters out."""

from ommi.sql.compiler import Compiled, SQLCompiler, creation_order
from ommi.sql.dialect import Dialect

__all__ = ["Compiled", "Dialect", "SQLCompiler", "creation_order"]
