"""The SQL layer shared by SQL drivers: the compiler (AST in, SQL text and parameters out), the dialect,
and :class:`SQLOperations`, the data operations a SQL driver builds on with a connection layer of its own."""

from ommi.sql._statement import Compiled
from ommi.sql.compiler import SQLCompiler, creation_order
from ommi.sql.dialect import Dialect
from ommi.sql.operations import SQLOperations, SQLTransactionOperations

__all__ = ["Compiled", "Dialect", "SQLCompiler", "SQLOperations", "SQLTransactionOperations", "creation_order"]
