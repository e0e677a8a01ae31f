"""The local emulator of the RunComfy Model API."""
