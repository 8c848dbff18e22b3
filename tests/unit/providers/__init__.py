"""Unit tests of ``videodub.providers``: the provider-neutral building blocks."""
