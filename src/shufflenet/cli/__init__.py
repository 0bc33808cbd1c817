"""The ``shufflenet`` command line: one small module per subcommand."""
