"""Column types that behave the same on SQLite and MariaDB."""

from sqlalchemy import BigInteger, Integer

# SQLite only auto-increments INTEGER PRIMARY KEY; MariaDB wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")
