"""The user's frames: StreamFrame, TableFrame, GroupBy, lazy and immutable; each call returns a new
frame over a plan node, and start() hands the plan to the runtime.

May import session and the layers below it (runtime, local, kafka, plan, operators, state, serde, time,
errors, records); not connectors, display, magics or cli (DESIGN §7, pyproject [tool.importlinter]).
"""
