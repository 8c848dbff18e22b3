"""Unit tests of ``videodub.run``: the runner's parts on their own."""
