"""Correctness oracles for streamframe's windowed aggregations.

``kstreams``: Kafka Streams 4.3.1 itself (a small Java topology built once with Maven) run on a topic;
``rules``: the same semantics evaluated in plain Python (no broker). ``kstreams``'s docstring states
the rules.
"""
