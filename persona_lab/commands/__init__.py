"""The CLI commands of each stage; modules that import only typer at module level, so `persona-lab --help` is
fast. Each command imports its library when it runs."""
