"""``python -m fnann``: the command line."""

if __name__ == "__main__":
    import sys

    from fnann.app.cli import main

    sys.exit(main())
