"""videodub's own stage implementations: ordinary plugins, one module each, named after what they wrap."""
