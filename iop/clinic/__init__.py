"""The clinic's actions: what kiosks and staff do, each a unit of work over the store."""
