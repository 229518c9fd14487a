"""Data: the shapes world, the learner's own images and the safe reading of untrusted files.

Importing the package is cheap and torch-free; its modules import what they need."""
