"""Example agents bundled with taskcanvas.

Imported on a first ``taskcanvas serve``; runnable with ``taskcanvas run``.
"""
