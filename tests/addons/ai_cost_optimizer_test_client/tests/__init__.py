# The lead adds the imports of the test modules (test_*.py) here.
