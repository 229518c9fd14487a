"""Teaching content: the course's text, the domain-and-task matrix, the size-vs-similarity quadrant.

Importing the package is cheap and torch-free; its modules import what they need."""
