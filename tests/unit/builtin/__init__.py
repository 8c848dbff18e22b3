"""Unit tests of ``videodub.builtin``: one module per built-in implementation."""
