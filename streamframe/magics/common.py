"""What every streamframe magic shares: the options (`%config KafkaMagics...`), the base class, and the
`command` decorator that gives a magic `--help` and turns every expected failure into one UsageError line.

    %config KafkaMagics.tail_default = 20      # %kafka_tail shows 20 records
    %config KafkaMagics.produce_format = "csv" # %%kafka_produce bodies are CSV unless --format says otherwise
"""

from __future__ import annotations

import difflib
import functools
import re
import sqlite3

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from IPython.utils.process import arg_split
from traitlets import Bool, CaselessStrEnum, Float, Int
from traitlets.config import Configurable

from streamframe.errors import StreamframeError

# Failures a user can cause and fix: shown as one line, never as a traceback.
EXPECTED = (StreamframeError, OSError, sqlite3.Error, UnicodeError)


class KafkaMagics(Configurable):
    """Options of the streamframe magics; set them with `%config KafkaMagics.<option> = value`."""

    tail_default = Int(10, help="How many records %kafka_tail shows when -n is not given.").tag(config=True)
    tail_format = CaselessStrEnum(["auto", "json", "csv", "text", "bytes", "avro", "jsonschema"], "auto",
                                  help="Value format %kafka_tail decodes with (auto: JSON if every record "
                                       "is JSON, Avro if every one is in the Schema Registry's wire format "
                                       "and a registry is configured, else text).").tag(config=True)
    follow_timeout = Float(None, allow_none=True,
                           help="Seconds %kafka_tail --follow runs when --timeout is not given "
                                "(None: until interrupted).").tag(config=True)
    produce_format = CaselessStrEnum(["json", "csv", "text", "avro", "jsonschema"], "json",
                                     help="Record format of %%kafka_produce cell bodies.").tag(config=True)
    default_partitions = Int(1, help="Partitions of topics created by %kafka_topics create and "
                                     "%%kafka_produce.").tag(config=True)
    progress = Bool(True, help="Show a progress bar for bounded connector loads (where widgets "
                               "render).").tag(config=True)
    stop_timeout = Float(30.0, help="Seconds %connector_stop and %sf_stop wait for a thread to "
                                    "end.").tag(config=True)


def one_line(message) -> str:
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    return "; ".join(lines) or type(message).__name__


def unquote(value):
    """IPython splits magic arguments keeping their quotes ('a b' stays "'a b'"): take them off, also
    around the value of key='a b'."""
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if not isinstance(value, str):
        return value
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    key, sep, rest = value.partition("=")
    if sep and len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
        return f"{key}={rest[1:-1]}"
    return value


def _asks_for_help(line: str) -> bool:
    return any(token in ("-h", "--help") for token in (line or "").split())


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # a value, as argparse reads it, not an option


def _unknown_options(parser, argv: list[str]) -> list[str]:
    """The options in `argv` that `parser` does not take (long ones also as unique prefixes, `--x=v`,
    short ones also with their value attached, `-n5`). argparse reports a missing positional before an
    unknown option, so `%kafka_tail --bogus` would say "topic is required": they are looked for first."""
    known = set(parser._option_string_actions)  # argparse's table of option strings (stable since 2.7)
    unknown = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or _NEGATIVE_NUMBER.match(token):
            continue
        name = token.split("=", 1)[0] if token.startswith("--") else token
        if name in known or (not token.startswith("--") and token[:2] in known):
            continue
        if token.startswith("--") and any(k.startswith(name) for k in known if k.startswith("--")):
            continue  # an abbreviation: argparse itself says when it is ambiguous
        unknown.append(token)
    return unknown


def _unrecognized(name: str, parser, unknown: list[str]) -> UsageError:
    message = f"%{name}: unrecognized arguments: {' '.join(unknown)}"
    longs = [k for k in parser._option_string_actions if k.startswith("--")]
    close = difflib.get_close_matches(unknown[0].split("=", 1)[0], longs, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return UsageError(f"{message}{hint} (see %{name} --help)")


def command(func):
    """Wrap a magic implementation `func(self, args, cell=None)` decorated with magic_arguments:
    `--help` prints its help, arguments are parsed, and expected failures become a one-line UsageError
    prefixed with the magic's name."""
    parser = func.parser
    name = parser.prog

    @functools.wraps(func)
    def magic(self, line="", cell=None):
        if _asks_for_help(line):
            print(parser.format_help())
            return None
        try:
            argv = arg_split(line or "", strict=True)
            unknown = _unknown_options(parser, argv)
            if unknown:
                raise _unrecognized(name, parser, unknown)
            args = parser.parse_args(argv)
            for field, value in vars(args).items():
                setattr(args, field, unquote(value))
        except UsageError as e:
            message = one_line(e)
            if message.startswith(f"%{name}: "):
                raise UsageError(message) from None
            raise UsageError(f"%{name}: {message} (see %{name} --help)") from None
        except ValueError as e:  # unbalanced quotes
            raise UsageError(f"%{name}: {one_line(e)}") from None
        try:
            return func(self, args, cell)
        except UsageError as e:
            message = one_line(e)
            raise UsageError(message if message.startswith("%") else f"%{name}: {message}") from None
        except EXPECTED as e:
            raise UsageError(f"%{name}: {one_line(e)}") from None

    return magic


class StreamframeMagics(Magics):
    """Base of streamframe's magic families: the shared options and the session's connection."""

    def __init__(self, shell=None, options: KafkaMagics | None = None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.options = options or KafkaMagics(parent=shell)

    def connection(self):
        """The session's connection (connecting, or starting the local broker, on first use)."""
        from streamframe import session

        return session.connection()

    @property
    def live(self) -> bool:
        """True in a Jupyter kernel (widgets and in-place display updates render), False in a terminal."""
        return getattr(self.shell, "kernel", None) is not None
