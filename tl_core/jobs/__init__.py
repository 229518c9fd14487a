"""Background work: the process-wide job manager and every job the pages submit.

Importing the package is cheap and torch-free; its modules import what they need."""
