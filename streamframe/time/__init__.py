"""Event time: timestamp extraction now; window definitions, stream time and lateness with the
stateful operators."""
