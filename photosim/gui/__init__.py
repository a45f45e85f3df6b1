"""The desktop app (PySide6). The only package that imports Qt; thin: no retrieval logic.

Heavy work runs on named thread pools (:mod:`photosim.gui.tasks`) that drive the core
generators; everything here only turns their results into item models and widgets.
"""
