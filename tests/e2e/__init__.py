"""The command line in subprocesses: whole dubs, the installed wheel and plugins, interrupts,
launchers and bad input."""
