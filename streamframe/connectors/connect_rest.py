"""A client for the REST API of a real Kafka Connect cluster (stdlib only: urllib and json).

    >>> from streamframe.connectors.connect_rest import ConnectClient
    >>> client = ConnectClient()  # $STREAMFRAME_CONNECT_URL, else the local worker (`local start --connect`)
    >>> client.create('''{"name": "lines", "config": {
    ...     "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
    ...     "tasks.max": "1", "file": "/tmp/in.txt", "topic": "lines"}}''')     # doctest: +SKIP
    >>> client.status("lines")["connector"]["state"]                            # doctest: +SKIP
    'RUNNING'
    >>> client.delete("lines")                                                  # doctest: +SKIP

Every failure is a ConnectRestError with one line: Connect's own ``message`` and the HTTP status
(``Kafka Connect (HTTP 409): Connector lines already exists``), or why the worker could not be reached.
Secret-looking config values never appear in those messages.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from streamframe.errors import ConnectRestError
from streamframe.kafka.config import scrub

#: Environment variable naming the worker to use (e.g. ``http://connect:8083``).
ENV_URL = "STREAMFRAME_CONNECT_URL"
_HINT = f"start one with `streamframe local start --connect`, or set {ENV_URL}"
# How long a "rebalance in progress" is retried: a distributed worker answers it while joining (409),
# and right after a config change, before the rebalance it set off (500 "a rebalance is expected").
REBALANCE_RETRY_S = 15.0


def resolve_url(url: str | None = None) -> str:
    """The worker's base URL: ``url`` if given, else ``$STREAMFRAME_CONNECT_URL``, else the local worker
    of ``streamframe.local`` (its connect.json). Raises ConnectRestError when there is none.
    """
    url = url or os.environ.get(ENV_URL)
    if not url:
        from streamframe.local import connect_status

        worker = connect_status()
        if worker is None:
            raise ConnectRestError(f"no Kafka Connect worker is known: {_HINT}")
        url = worker.url
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def one_line(message: str) -> str:
    """Connect's multi-line error message as one readable line (repeats and boilerplate removed)."""
    message = re.sub(r"PluginDesc\{klass=class ([\w.$]+)[^}]*\}", r"\1", message)
    parts: list[str] = []
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith("You can also find the above list of errors") or line in parts:
            continue
        parts.append(line)
    out = ""
    for part in parts:
        out += part if not out else (" " if out.endswith(":") else "; ") + part
    return out


def parse_payload(body: str | dict, name: str | None = None) -> tuple[str, dict[str, str]]:
    """``(name, config)`` from the payload of ``POST /connectors`` (``{"name": ..., "config": {...}}``).

    Also accepted: a flat config object (``{"name": ..., "connector.class": ...}``, as in a standalone
    properties file), and ``name`` given separately. Values are sent as strings, as Connect stores them
    (``1`` → ``"1"``, ``true`` → ``"true"``). Raises ConnectRestError on anything else.
    """
    name, config, _ = _parse(body, name)
    return name, config


def _parse(body: str | dict, name: str | None) -> tuple[str, dict[str, str], str | None]:
    initial_state = None
    if isinstance(body, str):
        if not body.strip():
            raise ConnectRestError('empty connector payload: expected {"name": ..., "config": {...}}')
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ConnectRestError(f"the connector payload is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ConnectRestError('the connector payload must be a JSON object: {"name": ..., "config": {...}}')
    if "config" in body:
        config = body["config"]
        if not isinstance(config, dict):
            raise ConnectRestError('"config" must be a JSON object of key/value settings')
        extra = sorted(set(body) - {"name", "config", "initial_state"})
        if extra:
            raise ConnectRestError(
                f"unexpected keys next to \"config\": {', '.join(extra)} (put them inside it)"
            )
        config = dict(config)
        named = body.get("name") or config.get("name")
        initial_state = body.get("initial_state")
    else:
        config = dict(body)
        named = config.get("name")
    named = name or named
    if not named or not isinstance(named, str):
        raise ConnectRestError('the connector has no name: add "name": "..." to the payload')
    if config.get("name", named) != named:
        raise ConnectRestError(f"two names for one connector: {named!r} and config name {config['name']!r}")
    if "connector.class" not in config:
        raise ConnectRestError(f'connector {named!r} has no "connector.class"')
    config.pop("name", None)
    return named, {str(k): _as_string(v) for k, v in config.items()}, initial_state


def _as_string(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(_as_string(v)) for v in value)
    return value


class ConnectClient:
    """The Kafka Connect REST API at ``url`` (see ``resolve_url``); each call waits up to ``timeout`` s."""

    def __init__(self, url: str | None = None, timeout: float = 30.0):
        self.url = resolve_url(url)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ConnectClient({self.url!r})"

    # -- the worker ---------------------------------------------------------------------------------
    def info(self) -> dict:
        """``GET /``: the worker's version, commit and Kafka cluster id."""
        return self._call("GET", "/")

    def plugins(self) -> list[dict]:
        """``GET /connector-plugins``: the connector classes the worker can run."""
        return self._call("GET", "/connector-plugins")

    # -- connectors ---------------------------------------------------------------------------------
    def list(self, expand: bool = False) -> list[str] | dict[str, dict]:
        """Connector names; with ``expand=True`` a dict name → {"status": ..., "info": ...}."""
        if expand:
            return self._call("GET", "/connectors?expand=status&expand=info")
        return self._call("GET", "/connectors")

    def create(self, payload: str | dict, name: str | None = None) -> dict:
        """``POST /connectors`` with the same payload as ``curl -X POST .../connectors``
        (see parse_payload)."""
        name, config, initial_state = _parse(payload, name)
        body = {"name": name, "config": config}
        if initial_state:  # RUNNING, PAUSED or STOPPED (Connect 3.7+)
            body["initial_state"] = initial_state
        return self._call("POST", "/connectors", body, secrets=config)

    def put_config(self, name: str, config: dict) -> dict:
        """``PUT /connectors/NAME/config``: create the connector, or replace its whole configuration."""
        name, config = parse_payload({"name": name, "config": config})
        return self._call("PUT", f"/connectors/{_q(name)}/config", config, secrets=config)

    def config(self, name: str) -> dict[str, str]:
        return self._call("GET", f"/connectors/{_q(name)}/config")

    def status(self, name: str) -> dict:
        """``{"name", "connector": {"state", "worker_id"[, "trace"]},
        "tasks": [{"id", "state", ...}], "type"}``."""
        return self._call("GET", f"/connectors/{_q(name)}/status")

    def tasks(self, name: str) -> list[dict]:
        return self._call("GET", f"/connectors/{_q(name)}/tasks")

    def pause(self, name: str) -> None:
        self._call("PUT", f"/connectors/{_q(name)}/pause")

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{_q(name)}/resume")

    def restart(self, name: str, include_tasks: bool = False, only_failed: bool = False) -> dict | None:
        """``POST /connectors/NAME/restart``; with tasks, Connect answers the status being restarted."""
        query = urllib.parse.urlencode({"includeTasks": str(include_tasks).lower(),
                                        "onlyFailed": str(only_failed).lower()})  # fmt: skip
        return self._call("POST", f"/connectors/{_q(name)}/restart?{query}")

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/connectors/{_q(name)}")

    # -- transport ----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, secrets: dict | None = None) -> Any:
        deadline = time.monotonic() + REBALANCE_RETRY_S
        while True:
            try:
                return self._once(method, path, body)
            except ConnectRestError as exc:
                message = scrub(str(exc), secrets or {})
                rebalancing = exc.status in (409, 500) and re.search(
                    r"rebalanc|stale configuration|momentarily", message
                )
                if not rebalancing or time.monotonic() > deadline:
                    raise ConnectRestError(message, exc.status) from None
            time.sleep(0.5)

    def _once(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ConnectRestError(_http_error(exc), exc.code) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise ConnectRestError(self._timeout_message(method, path)) from None
            why = getattr(reason, "strerror", None) or str(reason)
            raise ConnectRestError(f"cannot reach Kafka Connect at {self.url} ({why}): {_HINT}") from None
        except TimeoutError:
            raise ConnectRestError(self._timeout_message(method, path)) from None
        except OSError as exc:
            raise ConnectRestError(f"Kafka Connect at {self.url} dropped the connection ({exc})") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _timeout_message(self, method: str, path: str) -> str:
        return (
            f"Kafka Connect at {self.url} did not answer {method} {path.split('?')[0]} "
            f"within {self.timeout:g} s"
        )


def _q(name: str) -> str:
    if not name:
        raise ConnectRestError("a connector name is needed")
    return urllib.parse.quote(name, safe="")


def _http_error(exc: urllib.error.HTTPError) -> str:
    """``Kafka Connect (HTTP 404): No status found for connector x`` from Connect's error JSON."""
    try:
        raw = exc.read().decode(errors="replace")
    except OSError:
        raw = ""
    message = ""
    try:
        payload = json.loads(raw)
        if isinstance(payload, dict):
            message = str(payload.get("message") or "")
    except ValueError:
        # Not Connect's JSON (a proxy, or Jetty's own page): its first line of text, tags stripped.
        text = re.sub(r"<[^>]+>", " ", raw)
        message = next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]
    message = one_line(message) or exc.reason or "no message"
    return f"Kafka Connect (HTTP {exc.code}): {message}"
