"""Fetch the Apache Kafka jars (and, on demand, Kafka Connect's) from Maven Central once, with Maven,
into the user cache.

>>> from streamframe.local import ensure_jars
>>> libs = ensure_jars()          # first call runs mvn (seconds), later calls return at once
>>> (libs / "kafka_2.13-4.3.1.jar").exists()
True
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from streamframe.errors import BrokerError
from streamframe.local.paths import KAFKA_VERSION, kafka_cache_dir, libs_dir, locked

# The Kafka jar only declares log4j-api/core at runtime; without an slf4j 1.7 binding every
# broker log line (Kafka logs through slf4j) would go to slf4j's no-op logger.
LOG4J_VERSION = "2.25.4"
# Pinned because Maven 3.8's default binding is the 2013 plugin 2.8.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MARKER = ".complete"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamframe.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def ensure_jars() -> Path:
    """Return the directory of Kafka's runtime jars, running Maven first if they are not cached.

    The marker file is written only after a complete copy, so an interrupted fetch is redone.
    Raises BrokerError (one line, then the tail of Maven's output) if mvn is missing or fails.
    """
    return _ensure("Apache Kafka", libs_dir(), MARKER, f"kafka_2.13-{KAFKA_VERSION}.jar", _POM,
                   f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}")


def _ensure(what: str, libs: Path, marker_name: str, jar: str, pom: str, artifact: str) -> Path:
    """Fetch `artifact` and its runtime dependencies into `libs` once (checked by `jar` and a marker)."""
    marker = kafka_cache_dir() / marker_name
    if marker.exists() and (libs / jar).exists():
        return libs
    # One mvn at a time per cache: Maven's local repository is not safe for two.
    with locked(kafka_cache_dir().parent / f"kafka-{KAFKA_VERSION}.lock"):
        if marker.exists() and (libs / jar).exists():  # another process fetched while we waited
            return libs
        marker.unlink(missing_ok=True)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"Maven (mvn) is not on PATH; it is needed once to fetch {what} {KAFKA_VERSION} "
                "from Maven Central (install it, e.g. `apt-get install maven`)"
            )
        print(f"fetching {what} {KAFKA_VERSION} from Maven Central (once)...", file=sys.stderr, flush=True)
        kafka_cache_dir().mkdir(parents=True, exist_ok=True)
        # Copy into a fresh sibling dir and rename, so libs/ never holds a partial or mixed set.
        staging = Path(tempfile.mkdtemp(prefix=f"{libs.name}-", dir=kafka_cache_dir()))
        try:
            _copy_dependencies(mvn, staging, pom, artifact)
            if not (staging / jar).exists():
                raise BrokerError(f"mvn finished but {jar} is not in {staging}")
            shutil.rmtree(libs, ignore_errors=True)
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker.write_text(f"{KAFKA_VERSION}\n")
    return libs


# Kafka Connect's worker runs from its own classpath: connect-runtime brings Jetty, Jersey and a Jackson
# set of its own, which must not mix with the broker's libs/.
_CONNECT_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamframe.local</groupId>
  <artifactId>connect-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>connect-file</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""
CONNECT_MARKER = ".connect-complete"


def connect_libs_dir() -> Path:
    """The Kafka Connect worker's classpath dir, beside the broker's: ``kafka-<version>/connect-libs``."""
    return kafka_cache_dir() / "connect-libs"


def ensure_connect_jars() -> Path:
    """Return the directory of the Kafka Connect worker's jars (connect-runtime, connect-file and their
    dependencies), running Maven first if they are not cached. Same guarantees as ``ensure_jars``.
    """
    return _ensure(
        "Kafka Connect",
        connect_libs_dir(),
        CONNECT_MARKER,
        f"connect-runtime-{KAFKA_VERSION}.jar",
        _CONNECT_POM,
        f"org.apache.kafka:connect-runtime:{KAFKA_VERSION}",
    )


def mvn_command(mvn: str, pom: Path, dest: Path) -> list[str]:
    """The exact Maven command line (also handy for reporting)."""
    return [
        mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={dest}",
    ]  # fmt: skip


def _copy_dependencies(
    mvn: str, dest: Path, pom_template: str = _POM, what: str = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
) -> None:
    with tempfile.TemporaryDirectory(prefix="streamframe-mvn-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(pom_template.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        try:
            proc = subprocess.run(
                mvn_command(mvn, pom, dest),
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=1800,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"mvn did not finish fetching {what} in 30 minutes") from exc
        if proc.returncode != 0:
            tail = _tail((proc.stdout or "") + (proc.stderr or ""), 30)
            raise BrokerError(
                f"mvn failed (exit {proc.returncode}) fetching {what} "
                f"from Maven Central\n--- last lines of mvn output ---\n{tail}"
            )


def _tail(text: str, lines: int) -> str:
    # mvn -q still emits bare colour resets through jansi; strip them so the message reads cleanly.
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return "\n".join(text.strip().splitlines()[-lines:])
