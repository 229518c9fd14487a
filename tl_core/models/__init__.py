"""Models and weights: the architecture registry, the networks and their layer groups, pretrained weights, inference.

Importing the package is cheap and torch-free; its modules import what they need."""
