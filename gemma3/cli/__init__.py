"""The `gemma3` command line: options, the generate command, signal handling."""
