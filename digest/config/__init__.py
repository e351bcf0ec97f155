"""The ground floor: settings, source definitions, calendar vocabulary, logging, shipped files.

Nothing here imports from the layers above; every other package may import from here.
"""
