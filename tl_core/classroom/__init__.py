"""The classroom: class presets, share links and the commentary on a finished race.

Importing the package is cheap and torch-free; its modules import what they need."""
