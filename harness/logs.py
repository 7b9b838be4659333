"""Log evidence: the error/warning classes of a log, and a credential scan of every bundle file.

A *class* is a log line's level plus its message with the noise taken out (ids, numbers, quoted values,
pod names), cut to a few words, so "failed to get pod foo-123: timeout" and "failed to get pod bar-9:
timeout" are one class. Hand-written because the three drivers log in three formats (glog, logrus text,
JSON) and no library classifies all three.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache

from harness.normalize import Scrubber
from harness.redact import PLACEHOLDER, SECRET_PATTERNS, fingerprint

GLOG = re.compile(r"^([EWF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[^\]]*\]\s*(.*)$")
LOGRUS = re.compile(r"level=(error|warning|warn|fatal|panic)\b.*?msg=(\"(?:[^\"\\]|\\.)*\"|\S+)", re.I)
PLAIN = re.compile(r"\b(ERROR|WARNING|WARN|FATAL|CRITICAL|Traceback)\b[:\]]?\s*(.*)")
LEVELS = {"e": "error", "f": "error", "w": "warning", "error": "error", "fatal": "error", "panic": "error",
          "critical": "error", "traceback": "error", "warning": "warning", "warn": "warning"}
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
NUMBER = re.compile(r"\b\d+(\.\d+)?\b|0x[0-9a-f]+")
# Words an error or warning line has (lower-cased); other lines are skipped without parsing (big runs).
LEVEL_HINTS = ("error", "warn", "fatal", "panic", "critical", "traceback", "level")
# Every credential pattern needs one of these (lower-cased); a text without any is not scanned further.
CREDENTIAL_HINTS = ("eyj", "bearer", "authoriz", "token", "passw", "secret", "access_key", "accesskey",
                    "api_key", "akia", "asia", "private key")
MAX_WORDS = 8

# Credential shapes beyond harness.redact's: env-style assignments such as AWS_SECRET_ACCESS_KEY=...
EXTRA_SECRET_PATTERNS = {
    "env-credential": re.compile(
        r"\b([A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|API_KEY)[A-Z0-9_]*\s*[=:]\s*[\"']?)"
        r"([^\s\"',}<]{6,})"),
}


@lru_cache(maxsize=65536)  # the same message recurs across thousands of pod logs
def _class(level: str, message: str, scrub: Scrubber) -> str:
    text = scrub.text(message.strip())
    text = QUOTED.sub("\"…\"", text)
    text = NUMBER.sub("#", text)
    words = text.split()[:MAX_WORDS]
    return f"{LEVELS[level.lower()]}: {' '.join(words)}".rstrip()


def line_class(line: str, scrub: Scrubber) -> str | None:
    """The class of one log line if it is an error or a warning, else None."""
    stripped = line.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level = str(record.get("level") or record.get("severity") or "").lower()
            if level in LEVELS and LEVELS[level] in ("error", "warning"):
                return _class(level, str(record.get("msg") or record.get("message") or ""), scrub)
            return None
    match = GLOG.match(stripped)
    if match:
        return _class(match.group(1), match.group(2), scrub)
    match = LOGRUS.search(stripped)
    if match:
        message = match.group(2)
        if message.startswith("\""):
            message = message[1:-1]
        return _class(match.group(1), message, scrub)
    if stripped[:1] in ("I", "D") and stripped[1:5].isdigit():
        return None  # glog info/debug
    match = PLAIN.search(stripped)
    if match:
        return _class(match.group(1), match.group(2), scrub)
    return None


def log_classes(text: str, scrub: Scrubber) -> set[str]:
    classes: set[str] = set()
    for line in text.splitlines():
        if not (line[:1] in ("E", "W", "F") and line[1:5].isdigit()):
            lowered = line.lower()
            if not any(hint in lowered for hint in LEVEL_HINTS):
                continue
        found = line_class(line, scrub)
        if found:
            classes.add(found)
    return classes


def find_credentials(text: str) -> list[tuple[str, str, int]]:
    """(pattern name, fingerprint, line number) for every credential-looking value; never the value."""
    found: list[tuple[str, str, int]] = []
    lowered = text.lower()
    if not any(hint in lowered for hint in CREDENTIAL_HINTS):
        return found
    patterns: Iterable[tuple[str, re.Pattern[str]]] = (*SECRET_PATTERNS.items(), *EXTRA_SECRET_PATTERNS.items())
    for name, pattern in patterns:
        for match in pattern.finditer(text):
            value = match.group(2) if pattern.groups >= 2 else match.group(0)
            if PLACEHOLDER in value or value.startswith("<"):
                continue
            found.append((name, fingerprint(value), text.count("\n", 0, match.start()) + 1))
    return sorted(set(found), key=lambda item: (item[2], item[0]))


def redact_all(text: str) -> str:
    """harness.redact plus the extra credential shapes: for any log text that reaches a report."""
    from harness.redact import redact

    text = redact(text)
    for pattern in EXTRA_SECRET_PATTERNS.values():
        text = pattern.sub(lambda m: m.group(1) + PLACEHOLDER, text)
    return text
