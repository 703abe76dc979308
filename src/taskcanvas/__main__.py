"""``python -m taskcanvas``: the same as the ``taskcanvas`` command."""

from taskcanvas.cli.app import main

if __name__ == "__main__":
    main()
