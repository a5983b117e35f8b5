"""Command-line interface: a thin layer that parses options, calls the Python API and prints results."""
