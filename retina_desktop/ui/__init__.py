"""The Qt views: widgets that wire user input to the core and listen to its events."""
