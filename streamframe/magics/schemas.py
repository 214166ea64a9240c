"""`%schemas`: the subjects of the connection's Schema Registry and their versions.

    %schemas                      # DataFrame: subject, versions, latest version, its id, type
    %schemas 'payments*'          # only subjects matching a glob pattern
    %schemas payments-value       # every version of one subject, with its schema
"""

from __future__ import annotations

import fnmatch

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.magics.common import StreamframeMagics, command


@magics_class
class SchemaMagics(StreamframeMagics):
    @line_magic
    @command
    @magic_arguments()
    @argument("subject", nargs="?", default=None,
              help="a subject (shows its versions) or a glob pattern of subjects (default: all)")
    def schemas(self, args, cell=None):
        """List the Schema Registry's subjects and versions, or one subject's versions and schemas."""
        registry = self.connection().schema_registry
        if registry is None:
            raise UsageError("no Schema Registry: sf.connect(schema_registry=URL) or "
                             "$STREAMFRAME_SCHEMA_REGISTRY names one")
        subjects = registry.subjects()
        pattern = args.subject
        if pattern is not None and not any(c in pattern for c in "*?["):
            if pattern not in subjects:
                raise UsageError(f"the Schema Registry has no subject {pattern!r} "
                                 f"({len(subjects)} subjects; %schemas lists them)")
            rows = [registry.version(pattern, v) for v in registry.versions(pattern)]
            return pd.DataFrame([r for r in rows if r is not None],
                                columns=["subject", "version", "id", "type", "schema"]).set_index("version")
        if pattern is not None:
            subjects = [s for s in subjects if fnmatch.fnmatchcase(s, pattern)]
        rows = []
        for subject in subjects:
            latest = registry.version(subject)
            if latest is None:
                continue
            rows.append({"subject": subject, "versions": len(registry.versions(subject)),
                         "latest": latest["version"], "id": latest["id"], "type": latest["type"]})
        return pd.DataFrame(rows, columns=["subject", "versions", "latest", "id", "type"])
