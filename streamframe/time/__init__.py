"""Event time: timestamp extraction (extract.py) and window definitions with the rules that place a
record in its windows (windows.py); the operators keep stream time and judge lateness.

May import errors and records only; never IPython, ipywidgets or confluent_kafka (DESIGN §7,
pyproject [tool.importlinter]).
"""
