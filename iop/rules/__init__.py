"""The clinic's rules as pure functions: no database, no Flask, tested with tables of cases."""
