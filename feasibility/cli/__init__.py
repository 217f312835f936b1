"""The `feasibility` command: parses and validates options, then calls the API."""

from feasibility.cli.main import main

__all__ = ["main"]
