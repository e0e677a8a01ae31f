"""pytest plugin: fixtures that start an emulator."""
