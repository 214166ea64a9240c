"""The session's Schema Registry: confluent-kafka's SchemaRegistryClient behind the small interface
formats ask of it (serde/wire.py SchemaSource), its errors translated into ours, credentials masked.

Given as a URL ("https://host:8081", "mock://name" for confluent-kafka's in-memory registry), a dict of
SchemaRegistryClient settings (`url`, `basic.auth.user.info`, `bearer.auth.*`, `ssl.*`, `timeout`,
`max.retries`, ...), or a SchemaRegistryClient. The HTTP path (auth, retries) is confluent-kafka's; a
registry that does not answer fails within seconds (SchemaRegistryError), as streamframe sets a short
timeout and few retries unless the settings say otherwise.

    >>> r = Registry({"url": "mock://docs", "basic.auth.user.info": "ana:s3cret"})
    >>> r
    Registry(url='mock://docs', config={'basic.auth.user.info': '********'})
    >>> sid = r.register("t-value", '{"type": "string"}', "AVRO")
    >>> r.schema(sid), r.schema(999)
    (('AVRO', '{"type": "string"}'), None)
"""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit, urlunsplit

from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError as ClientError

from streamframe.errors import ConfigError, IncompatibleSchemaError, SchemaRegistryError
from streamframe.kafka.config import MASK, redact, scrub

# Unless the settings say otherwise: an answer within 5 s a try, two retries (confluent-kafka's own
# defaults wait up to 20 s between retries, which reads as a hang in a notebook).
DEFAULTS = {"timeout": 5, "max.retries": 2, "retries.wait.ms": 200, "retries.max.wait.ms": 1000}
_NOT_FOUND = 404
_INCOMPATIBLE = 409
_REFUSED = (401, 403)
_USER_INFO = "basic.auth.user.info"  # "user:password", which the librdkafka secret names do not match


def _plain_url(url: str) -> str:
    """The URL(s) without the user:password a URL may carry."""
    parts = []
    for one in url.split(","):
        s = urlsplit(one.strip())
        netloc = s.netloc.rpartition("@")[2]
        parts.append(urlunsplit((s.scheme, netloc, s.path, s.query, s.fragment)))
    return ",".join(parts)


def _url_secrets(url: str) -> list[str]:
    found = []
    for one in url.split(","):
        user = urlsplit(one.strip()).netloc.rpartition("@")[0]
        if user:
            found += [user, user.partition(":")[2]]
    return [s for s in found if len(s) >= 3]


def _without_userinfo(conf: dict) -> dict:
    """`conf` with a URL's user:password moved to basic.auth.user.info, as confluent-kafka reads it
    anyway: left in the URL, it would be in every request URL that httpx logs."""
    url = conf["url"]
    user = urlsplit(url.split(",")[0].strip()).netloc.rpartition("@")[0]
    if not user or _USER_INFO in conf:
        return conf
    return {**conf, "url": _plain_url(url), _USER_INFO: unquote(user)}


def _schema(text: str, schema_type: str, references=()) -> Schema:
    refs = [SchemaReference(name, subject, version) for name, subject, version in references]
    return Schema(text, schema_type, refs) if refs else Schema(text, schema_type)


class Registry:
    """A Schema Registry client for the session (see the module docstring for what `setting` may be)."""

    def __init__(self, setting):
        if isinstance(setting, SchemaRegistryClient):
            conf = dict(setting.config() if callable(getattr(setting, "config", None)) else {})
            self.client = setting
        elif isinstance(setting, (str, dict)):
            conf = {"url": setting} if isinstance(setting, str) else dict(setting)
            if not isinstance(conf.get("url"), str) or not conf["url"]:
                raise ConfigError("schema_registry= needs a URL (or a dict with 'url')")
            try:
                self.client = SchemaRegistryClient.new_client({**DEFAULTS, **_without_userinfo(conf)})
            except (ValueError, TypeError) as e:
                raise ConfigError(f"bad Schema Registry setting: {self._scrub(str(e), conf)}") from None
        else:
            raise ConfigError("schema_registry= takes a URL, a dict of SchemaRegistryClient settings or a "
                              f"SchemaRegistryClient, got {type(setting).__name__}")
        self.url = _plain_url(str(conf.get("url", "?")))
        self._conf = conf
        self._lock = threading.Lock()

    @property
    def config(self) -> dict:
        """The settings besides the URL, secrets masked."""
        conf = redact({k: v for k, v in self._conf.items() if k != "url"})
        return {k: MASK if k == _USER_INFO and v else v for k, v in conf.items()}

    def __repr__(self) -> str:
        return f"Registry(url={self.url!r}, config={self.config!r})"

    @staticmethod
    def _scrub(text: str, conf: dict) -> str:
        secrets = _url_secrets(str(conf.get("url", "")))
        auth = conf.get(_USER_INFO)
        if isinstance(auth, str):
            secrets += [auth, auth.partition(":")[2]]
        text = scrub(text, conf)
        for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def scrub(self, text: str) -> str:
        return self._scrub(str(text), self._conf)

    def _call(self, what: str, fn, *args, not_found=False, subject: str | None = None):
        """`fn(*args)`, its errors as ours: None for a 404 when `not_found`, else one line naming the
        registry's URL and what was asked."""
        try:
            with self._lock:  # the client's caches are not all guarded
                return fn(*args)
        except ClientError as e:
            status = e.http_status_code
            if status == _NOT_FOUND and not_found:
                return None
            reason = self.scrub(e.error_message)
            if status == _INCOMPATIBLE and subject is not None:
                raise IncompatibleSchemaError(
                    f"the Schema Registry at {self.url} rejected the schema for subject {subject!r} as "
                    f"incompatible with its versions ({reason}); change the frame's columns to fit, or "
                    f"the subject's compatibility", subject) from None
            if status in _REFUSED:
                raise SchemaRegistryError(f"the Schema Registry at {self.url} refused the credentials "
                                          f"(HTTP {status}: {reason}) {what}") from None
            raise SchemaRegistryError(f"the Schema Registry at {self.url} failed {what} "
                                      f"(HTTP {status}: {reason})") from None
        except Exception as e:  # noqa: BLE001 - httpx's transport errors, DNS, TLS: the registry is not there
            raise SchemaRegistryError(f"cannot reach the Schema Registry at {self.url} {what} "
                                      f"({type(e).__name__}: {self.scrub(str(e)) or 'no answer'})") from None

    # --- what formats ask (serde/wire.py SchemaSource) ------------------------------------------------
    def schema(self, schema_id: int, kind: str | None = None) -> tuple[str, str] | None:
        found = self._lookup(schema_id, kind)
        return None if found is None else (found.schema_type or "AVRO", found.schema_str)

    def _lookup(self, schema_id: int, kind: str | None) -> Schema | None:
        # A Protobuf schema is asked for as a base64 FileDescriptorProto ("serialized"), not .proto text,
        # on the first ask: the client caches a schema by id whatever form was asked for.
        fmt = "serialized" if kind == "PROTOBUF" else None
        return self._call(f"looking up schema id {schema_id}", self.client.get_schema, schema_id, None, fmt,
                          not_found=True)

    def register(self, subject: str, schema: str, schema_type: str, references=()) -> int:
        return self._call(f"registering a schema under subject {subject!r}", self.client.register_schema,
                          subject, _schema(schema, schema_type, references), subject=subject)

    def version_of(self, subject: str, schema: str, schema_type: str, references=()) -> int:
        found = self._call(f"looking up a schema under subject {subject!r}", self.client.lookup_schema,
                           subject, _schema(schema, schema_type, references))
        return found.version

    def imports(self, schema_id: int) -> dict[str, str]:
        found = self._lookup(schema_id, "PROTOBUF")
        out: dict[str, str] = {}
        self._resolve(found.references if found is not None else None, out, set())
        return out

    def _resolve(self, refs, out: dict[str, str], seen: set[str]) -> None:
        """The referenced schemas into `out`, depth first (a schema after those it references)."""
        for ref in refs or ():
            if ref.name in seen:
                continue
            seen.add(ref.name)
            got = self._call(f"looking up {ref.subject!r} version {ref.version} (referenced as {ref.name})",
                             self.client.get_version, ref.subject, ref.version, True, "serialized",
                             not_found=True)
            if got is None:
                raise ValueError(f"it references {ref.name} ({ref.subject!r} version {ref.version}), which "
                                 "the Schema Registry does not have")
            self._resolve(got.schema.references, out, seen)
            out[ref.name] = got.schema.schema_str

    def latest(self, subject: str) -> tuple[int, str, str] | None:
        found: RegisteredSchema | None = self._call(
            f"looking up subject {subject!r}", self.client.get_latest_version, subject, not_found=True)
        if found is None:
            return None
        return found.schema_id, found.schema.schema_type or "AVRO", found.schema.schema_str

    # --- what the magics show ----------------------------------------------------------------------
    def subjects(self) -> list[str]:
        return sorted(self._call("listing subjects", self.client.get_subjects))

    def versions(self, subject: str) -> list[int]:
        return sorted(self._call(f"listing the versions of {subject!r}", self.client.get_versions, subject,
                                 not_found=True) or [])

    def version(self, subject: str, version: int | str = "latest") -> dict | None:
        """{subject, version, id, type, schema} of one version ("latest": the newest); None if the
        subject has no such version."""
        if version == "latest":
            found = self._call(f"looking up subject {subject!r}", self.client.get_latest_version, subject,
                               not_found=True)
        else:
            found = self._call(f"looking up {subject!r} version {version}", self.client.get_version,
                               subject, version, not_found=True)
        if found is None:
            return None
        return {"subject": subject, "version": found.version, "id": found.schema_id,
                "type": found.schema.schema_type or "AVRO", "schema": found.schema.schema_str}
