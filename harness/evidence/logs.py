"""Log evidence: the error/warning classes of a log (the credential scan itself is `harness.boundary.redact`).

A *class* is a log line's level plus its message with the noise taken out (ids, numbers, quoted values,
pod names), cut to a few words, so "failed to get pod foo-123: timeout" and "failed to get pod bar-9:
timeout" are one class. Hand-written because the three drivers log in three formats (glog, logrus text,
JSON) and no library classifies all three.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from harness.evidence.normalize import Scrubber

# `timestamps=true` on a pod log read puts an RFC 3339 (nano) timestamp and one space before every line
# (Kubernetes API, core/v1 PodLogOptions.timestamps); the central driver's log is read that way, so the
# glog pattern, anchored at the line start, must see the line without it.
K8S_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")
GLOG = re.compile(r"^([EWF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[^\]]*\]\s*(.*)$")
LOGRUS = re.compile(r"level=(error|warning|warn|fatal|panic)\b.*?msg=(\"(?:[^\"\\]|\\.)*\"|\S+)", re.I)
PLAIN = re.compile(r"\b(ERROR|WARNING|WARN|FATAL|CRITICAL|Traceback)\b[:\]]?\s*(.*)")
LEVELS = {"e": "error", "f": "error", "w": "warning", "error": "error", "fatal": "error", "panic": "error",
          "critical": "error", "traceback": "error", "warning": "warning", "warn": "warning"}
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
NUMBER = re.compile(r"\b\d+(\.\d+)?\b|0x[0-9a-f]+")
# Words an error or warning line has (lower-cased); other lines are skipped without parsing (big runs).
LEVEL_HINTS = ("error", "warn", "fatal", "panic", "critical", "traceback", "level")
MAX_WORDS = 8


@lru_cache(maxsize=65536)  # the same message recurs across thousands of pod logs
def _class(level: str, message: str, scrub: Scrubber) -> str:
    text = scrub.text(message.strip())
    text = QUOTED.sub("\"…\"", text)
    text = NUMBER.sub("#", text)
    words = text.split()[:MAX_WORDS]
    return f"{LEVELS[level.lower()]}: {' '.join(words)}".rstrip()


def line_class(line: str, scrub: Scrubber) -> str | None:
    """The class of one log line if it is an error or a warning, else None."""
    stripped = K8S_TIMESTAMP.sub("", line.strip(), count=1)
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


@lru_cache(maxsize=65536)  # one warning line recurs in thousands of pod logs once its timestamp is cut
def _line_class_cached(line: str, scrub: Scrubber) -> str | None:
    return line_class(line, scrub)


def log_classes(text: str, scrub: Scrubber) -> set[str]:
    classes: set[str] = set()
    for line in text.splitlines():
        if line[:1].isdigit():
            line = K8S_TIMESTAMP.sub("", line, count=1)
        if not (line[:1] in ("E", "W", "F") and line[1:5].isdigit()):
            lowered = line.lower()
            if not any(hint in lowered for hint in LEVEL_HINTS):
                continue
        found = _line_class_cached(line, scrub)
        if found:
            classes.add(found)
    return classes

