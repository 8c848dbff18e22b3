"""Unit tests of ``videodub.testing``: the parts of the test tools that are plain functions."""
