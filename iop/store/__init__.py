"""Where the data lives: the engine and sessions, the tables, migrations, and the queries
that apply the rules to many rows at once."""
