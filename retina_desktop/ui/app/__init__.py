"""The application: the main window (the composition root), its actions, settings, flows and dialogs."""
