"""What tests share besides fixtures: world builders, staff sign-in, browsers, real server processes,
and the hand-worked cases more than one test file reads. Fixtures live in tests/conftest.py; a test
imports helpers from here, never from another test module or from conftest.
"""
