"""tl_core: the Transfer Learning Playbook's library: data, models, plans, training and measurement.

Importing the package is cheap and torch-free; modules that need torch import it themselves, so the
decision pages of the app never pay for it.
"""
