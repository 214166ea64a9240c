"""The logical plan: nodes a frame builds, column expressions, aggregation specs, explain() and its
drawing, and the analyses the runtime compiles from (value projection, deferred metadata, re-keying).

May import operators, state, serde, time, errors and records; never IPython, ipywidgets or
confluent_kafka (DESIGN §7, pyproject [tool.importlinter]).
"""
