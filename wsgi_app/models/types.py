"""Column types that behave the same on SQLite and MariaDB.

Identifiers (appkeys, clientMsgIds, order numbers, token hashes, file names)
compare as bytes on every backend: SQLite's default collation already does,
MariaDB's default ``utf8mb4_general_ci`` would make "Msg-1" equal "msg-1".
Migration 0003 converts the existing columns.
"""

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.dialects import mysql

# SQLite only auto-increments INTEGER PRIMARY KEY; MariaDB wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")

BINARY_COLLATION = "utf8mb4_bin"


def Identifier(length: int) -> String:  # noqa: N802 (reads like a type in column declarations)
    """``VARCHAR(length)`` compared byte for byte (case and accents count) on every backend."""
    binary = mysql.VARCHAR(length, charset="utf8mb4", collation=BINARY_COLLATION)
    return String(length).with_variant(binary, "mysql", "mariadb")
