"""``python -m fnann``: the command line."""

if __name__ == "__main__":
    from fnann.app.cli import console

    console()
