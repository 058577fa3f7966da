# SPDX-License-Identifier: GPL-2.0
"""Prometheus text format 0.0.4: a strict parser and the checks promtool 2.42 does not make.

promtool check metrics accepts duplicate series, a family split into several groups, HELP or
TYPE after the family's samples in some cases, and histogram buckets out of order or without
+Inf.  check() reports each of those as one line; parse() raises ValueError on anything that is
not the format at all.
"""

import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels that carry unbounded identities or collide with the labels of the scrape target.
FORBIDDEN_LABELS = {
    "pid", "tid", "tgid", "uid", "user", "user_id", "username", "conn", "conn_id",
    "connection", "connection_id", "session", "session_id", "fd", "socket", "pod_uid",
    "container_id", "namespace", "pod", "container", "instance", "job", "cluster",
}


class Sample:
    def __init__(self, name, labels, value, line):
        self.name = name
        self.labels = labels  # list of (name, value), in the order written
        self.value = value
        self.line = line

    def key(self):
        return (self.name, frozenset(self.labels))


class Exposition:
    def __init__(self):
        self.help = {}  # family -> (text, line number)
        self.type = {}  # family -> (type, line number)
        self.samples = []
        self.errors = []  # duplicate HELP/TYPE lines (the parser goes on)


def _unescape_label(s, i, lineno):
    """The label value starting after the opening quote at s[i]; (value, index after quote)."""
    out = []
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                break
            n = s[i + 1]
            if n == "\\":
                out.append("\\")
            elif n == '"':
                out.append('"')
            elif n == "n":
                out.append("\n")
            else:
                raise ValueError(f"line {lineno}: invalid escape sequence '\\{n}'")
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        elif c == "\n":
            raise ValueError(f"line {lineno}: line feed in a label value")
        else:
            out.append(c)
            i += 1
    raise ValueError(f"line {lineno}: unterminated label value")


def _parse_value(text, lineno):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"line {lineno}: bad value {text!r}") from None


def family_of(name, types):
    """The family a sample name belongs to (histogram and summary suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base, ("",))[0] in ("histogram", "summary"):
                return base
    return name


def parse(text):
    if not text.endswith("\n"):
        raise ValueError("the exposition does not end with a line feed")
    expo = Exposition()
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if "\r" in line:
            raise ValueError(f"line {lineno}: carriage return")
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped[1:].strip().split(None, 2)
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                kind, name = parts[0], parts[1]
                rest = parts[2] if len(parts) > 2 else ""
                if not NAME.fullmatch(name):
                    raise ValueError(f"line {lineno}: bad metric name {name!r}")
                table = expo.help if kind == "HELP" else expo.type
                if name in table:
                    expo.errors.append(f"line {lineno}: second {kind} for {name}")
                if kind == "TYPE" and rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError(f"line {lineno}: unknown type {rest!r}")
                table.setdefault(name, (rest, lineno))
            continue
        m = NAME.match(stripped)
        if not m:
            raise ValueError(f"line {lineno}: no metric name")
        name = m.group(0)
        i = m.end()
        labels = []
        if i < len(stripped) and stripped[i] == "{":
            i += 1
            while True:
                while i < len(stripped) and stripped[i] in " \t":
                    i += 1
                if i < len(stripped) and stripped[i] == "}":
                    i += 1
                    break
                lm = LABEL.match(stripped, i)
                if not lm:
                    raise ValueError(f"line {lineno}: bad label name")
                i = lm.end()
                if stripped[i : i + 2] != '="':
                    raise ValueError(f"line {lineno}: expected =\" after {lm.group(0)}")
                value, i = _unescape_label(stripped, i + 2, lineno)
                labels.append((lm.group(0), value))
                if i < len(stripped) and stripped[i] == ",":
                    i += 1
                elif i < len(stripped) and stripped[i] == "}":
                    i += 1
                    break
                else:
                    raise ValueError(f"line {lineno}: expected , or }} in the labels")
        rest = stripped[i:].split()
        if not rest or len(rest) > 2:
            raise ValueError(f"line {lineno}: expected a value and at most a timestamp")
        expo.samples.append(Sample(name, labels, _parse_value(rest[0], lineno), lineno))
    return expo


def check(expo):
    """Problems promtool 2.42 lets through, one line each; an empty list when there are none."""
    problems = list(expo.errors)
    seen = set()
    groups = []  # families in the order their groups start
    for s in expo.samples:
        fam = family_of(s.name, expo.type)
        if not groups or groups[-1] != fam:
            if fam in groups:
                problems.append(f"line {s.line}: {fam} continues after another family (a second group)")
            groups.append(fam)
        if s.key() in seen:
            problems.append(f"line {s.line}: duplicate series {s.name}{dict(s.labels)}")
        seen.add(s.key())
        names = [k for k, _ in s.labels]
        if len(set(names)) != len(names):
            problems.append(f"line {s.line}: a label twice in {s.name}")
        for k in names:
            if k in FORBIDDEN_LABELS:
                problems.append(f"line {s.line}: {s.name} has a forbidden label {k}")
        for table, what in ((expo.help, "HELP"), (expo.type, "TYPE")):
            if fam not in table:
                problems.append(f"line {s.line}: {fam} has no {what}")
            elif table[fam][1] > s.line:
                problems.append(f"line {s.line}: {what} of {fam} after its samples")
    for fam, (typ, _) in expo.type.items():
        if typ == "counter" and not fam.endswith("_total"):
            problems.append(f"{fam}: counter without _total")
        if typ != "counter" and fam.endswith("_total"):
            problems.append(f"{fam}: {typ} named _total")
        if typ == "histogram":
            problems.extend(_check_histogram(expo, fam))
    return problems


def _check_histogram(expo, fam):
    problems = []
    series = {}
    for s in expo.samples:
        if s.name == fam + "_bucket":
            rest = frozenset((k, v) for k, v in s.labels if k != "le")
            le = dict(s.labels).get("le")
            if le is None:
                problems.append(f"line {s.line}: bucket without le")
                continue
            series.setdefault(rest, {"buckets": [], "count": None})["buckets"].append((_parse_value(le, s.line), s.value, s.line))
        elif s.name == fam + "_count":
            series.setdefault(frozenset(s.labels), {"buckets": [], "count": None})["count"] = s.value
    for rest, d in series.items():
        b = d["buckets"]
        bounds = [x[0] for x in b]
        if bounds != sorted(bounds):
            problems.append(f"{fam}{dict(rest)}: buckets out of order")
        if not bounds or bounds[-1] != math.inf:
            problems.append(f"{fam}{dict(rest)}: no +Inf bucket")
        elif d["count"] is not None and b[-1][1] != d["count"]:
            problems.append(f"{fam}{dict(rest)}: +Inf bucket differs from _count")
        counts = [x[1] for x in b]
        if counts != sorted(counts):
            problems.append(f"{fam}{dict(rest)}: buckets not cumulative")
    return problems


def metric_names(expo):
    """Every sample name of the exposition."""
    return {s.name for s in expo.samples}
