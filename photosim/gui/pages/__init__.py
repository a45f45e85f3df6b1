"""The app's tabs, one module and widget each; :class:`~photosim.gui.windows.main_window.MainWindow`
keeps the frame (menus, tabs, status bar) and hands each page the services it needs."""
