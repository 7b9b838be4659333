"""Log evidence: the error/warning classes of a log (the credential scan itself is `harness.boundary.redact`).

A *class* is a log line's level plus its message with the noise taken out (ids, numbers, quoted values,
pod names), cut to a few words, so "failed to get pod foo-123: timeout" and "failed to get pod bar-9:
timeout" are one class. Hand-written because the three drivers log in three formats (glog, logrus text,
JSON) and no library classifies all three.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

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


def _class(level: str, message: str, scrub: Scrubber) -> str:
    text = scrub.text(message.strip())
    text = QUOTED.sub("\"…\"", text)
    text = NUMBER.sub("#", text)
    words = text.split()[:MAX_WORDS]
    return f"{LEVELS[level.lower()]}: {' '.join(words)}".rstrip()


def _level_message(line: str) -> tuple[str, str] | None:
    """(level, message) of one log line if it is an error or a warning, else None."""
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
                return level, str(record.get("msg") or record.get("message") or "")
            return None
    match = GLOG.match(stripped)
    if match:
        return match.group(1), match.group(2)
    match = LOGRUS.search(stripped)
    if match:
        message = match.group(2)
        if message.startswith("\""):
            message = message[1:-1]
        return match.group(1), message
    if stripped[:1] in ("I", "D") and stripped[1:5].isdigit():
        return None  # glog info/debug
    match = PLAIN.search(stripped)
    if match:
        return match.group(1), match.group(2)
    return None


def line_class(line: str, scrub: Scrubber) -> str | None:
    """The class of one log line if it is an error or a warning, else None."""
    found = _level_message(line)
    return None if found is None else _class(*found, scrub)


MEMO = 65536  # lines remembered per bundle: one warning recurs in 1000s of pod logs, unique lines must not grow it


def _hinted(lowered: str) -> bool:
    """`any(hint in lowered for hint in LEVEL_HINTS)`, spelled out: called for each line of 100 000s of logs."""
    return ("error" in lowered or "warn" in lowered or "fatal" in lowered or "panic" in lowered
            or "critical" in lowered or "traceback" in lowered or "level" in lowered)


class LogClasses:
    """The log classes of one bundle's logs. The class of a line (once its timestamp is cut) is remembered here,
    on an object made per bundle, never in a process-wide cache (issue 13): it depends on the bundle's scrubber,
    and a long-lived process must not keep one run's log lines."""

    __slots__ = ("scrub", "_lines", "_messages")

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub
        self._lines: dict[str, str | None] = {}
        # (level, message) -> class: glog lines carry their own time, so the same message comes in new lines
        self._messages: dict[tuple[str, str], str] = {}

    def line(self, line: str) -> str | None:
        """`line_class(line, self.scrub)`, remembered for this bundle."""
        if line in self._lines:
            return self._lines[line]
        parsed = _level_message(line)
        found = None
        if parsed is not None:
            found = self._messages.get(parsed)
            if found is None:
                found = _class(*parsed, self.scrub)
                if len(self._messages) < MEMO:
                    self._messages[parsed] = found
        if len(self._lines) < MEMO:
            self._lines[line] = found
        return found

    def of(self, text: str) -> set[str]:
        """The classes of one log's error and warning lines; other lines are skipped without parsing."""
        classes: set[str] = set()
        lines, timestamp = self._lines, K8S_TIMESTAMP.match
        for line in _lines_of(text):
            if line[:1].isdigit():
                cut = timestamp(line)
                if cut:
                    line = line[cut.end():]
            if line in lines:  # only lines that passed the test below are remembered
                found = lines[line]
            elif (line[:1] in ("E", "W", "F") and line[1:5].isdigit()) or _hinted(line.lower()):
                found = self.line(line)
            else:
                continue
            if found:
                classes.add(found)
        return classes


SPLIT_CHARS = 1 << 20  # a log's lines are split this many characters (and up to the next "\n") at a time


def _lines_of(text: str) -> Iterator[str]:
    """`text.splitlines()`, a piece at a time: each piece ends just after a "\n" (which ends a line whatever
    precedes it, "\r" included), so the lines are the same, and a 100 MB log is never held as a list of all
    its lines besides its text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + SPLIT_CHARS)
        end = len(text) if end < 0 else end + 1
        yield from text[start:end].splitlines()
        start = end


def log_classes(text: str, scrub: Scrubber) -> set[str]:
    """The classes of one log (a bundle's many logs: one `LogClasses` for all of them)."""
    return LogClasses(scrub).of(text)
