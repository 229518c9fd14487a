"""Training: plans, freezing, the trainer, what a run records, and the plan as code.

Importing the package is cheap and torch-free; its modules import what they need."""
