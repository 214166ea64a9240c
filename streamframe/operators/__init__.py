"""Physical operators on pandas batches: stateless, aggregate, window, session, sliding, join; each
takes a batch and returns the batch it emits, and runs the same under the test driver, in a kernel
and headless.

May import state, serde, time, errors and records only; never IPython, ipywidgets or confluent_kafka
(DESIGN §7, pyproject [tool.importlinter]).
"""
