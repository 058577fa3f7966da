#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Writes docs/schemas/<type>.schema.json, one JSON Schema (Draft 2020-12) per record type of
the JSON record contract (docs/records.md).  The shared parts (conn, origin, violations, ...)
are written once here and inlined in each schema, so that each file stands alone.

Records may gain members within a version: the schemas name every member known and its type,
and allow others (readers ignore what they do not know).  Run it after changing a record;
tests/integration/test_records.py validates real records against the files.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = "https://wsaudit.invalid/schemas/v1/"

STR = {"type": "string"}
INT = {"type": "integer"}
UINT = {"type": "integer", "minimum": 0}
BOOL = {"type": "boolean"}
TS = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$",
      "description": "RFC 3339 UTC time with nanoseconds"}
NULLSTR = {"type": ["string", "null"]}
PID = {"type": "integer", "minimum": 1, "description": "host thread-group id"}
USER = {"description": "the user, as its keyed hash u#<12 hex> (the id itself with "
                       "--show-identities); null: none; or why it is not known",
        "oneOf": [NULLSTR,
                  {"type": "object", "properties": {"ambiguous": STR}, "required": ["ambiguous"]},
                  {"type": "object", "properties": {"unknown": STR}, "required": ["unknown"]}]}
CONN = {
    "type": "object",
    "description": "the connection: its socket's addresses and its user",
    "properties": {
        "id": STR, "local": STR, "peer": STR, "tls": BOOL, "user": USER, "adopted": BOOL,
        "user_unknown": BOOL, "history_unknown": BOOL,
        "identity_from": {"enum": ["handshake", "process_memory"]},
        "tls_link": {"enum": ["linked", "pending", "conflict"]}, "gap_bytes": UINT,
    },
    "required": ["id", "local", "peer", "tls", "user", "adopted", "user_unknown",
                 "history_unknown"],
}
ORIGIN = {"type": ["object", "null"],
          "description": "the innermost frame of the writer's stack that is not transport",
          "properties": {"function": STR, "file": STR, "line": INT},
          "required": ["function", "file", "line"]}
VIOLATIONS = {"type": "array", "items": {
    "type": "object",
    "properties": {"rule": {"type": "string", "pattern": "^[a-z_]+$"}, "detail": STR,
                   "values": {"type": "array", "items": NULLSTR}, "key": NULLSTR},
    "required": ["rule", "detail"]}}
CONTAINER = {"description": "the writer's container and pod; null on the host",
             "oneOf": [{"type": "null"}, {
                 "type": "object",
                 "properties": {"id": NULLSTR, "pod": NULLSTR, "namespace": NULLSTR,
                                "name": NULLSTR, "pod_uid": NULLSTR, "runtime": STR,
                                "sandbox": BOOL, "unresolved": STR},
                 "required": ["id", "pod", "namespace", "name", "pod_uid", "runtime"]}]}
MESSAGE = {"type": ["object", "null"],
           "description": "the message the frame ends, when whole and decoded",
           "properties": {"msg_type": NULLSTR,
                          "type": {"type": ["string", "null"], "deprecated": True,
                                   "description": "msg_type's former name (v1 readers)"},
                          "user": NULLSTR},
           "required": ["msg_type", "user"]}
OPCODE = {"enum": ["continuation", "text", "binary", "close", "ping", "pong", "reserved"]}
# Nested objects of counters (stats): integers, or more of them, by name.
COUNTERS = {"$ref": "#/$defs/counters"}
COUNTERS_DEF = {"type": "object",
                "additionalProperties": {"anyOf": [UINT, COUNTERS, STR, BOOL]}}


def record(name, title, props, required, extra=None):
    s = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE + name + ".schema.json",
        "title": title,
        "type": "object",
        "properties": {"v": {"const": 1, "description": "version of the record contract"},
                       "type": {"const": name}, **props},
        "required": ["v", "type", *required],
        "$defs": {"counters": COUNTERS_DEF},
    }
    if extra:
        s.update(extra)
    return s


def frame(name, title):
    props = {
        "ts": TS, "pid": PID, "tid": PID, "comm": STR, "container": CONTAINER, "conn": CONN,
        "opcode": OPCODE, "fin": BOOL, "compressed": BOOL, "payload_len": UINT,
        "captured_len": UINT, "truncated": BOOL, "close_code": {"type": ["integer", "null"]},
        "close_reason_len": UINT, "message": MESSAGE, "message_status": STR, "origin": ORIGIN,
        "unattributed": STR, "stack_partial": BOOL,
        "context": {"type": "object", "properties": {"function": NULLSTR, "status": STR,
                                                     "user": NULLSTR}},
        "via_bridge": {"type": ["boolean", "null"]},
        "stack": {"type": "array", "items": {"type": "object"}},
        "writer_unknown": BOOL, "test": NULLSTR, "test_via": STR, "test_unknown": STR,
        "violations": VIOLATIONS, "payload": STR, "payload_hex": STR, "after_close": BOOL,
    }
    req = ["ts", "pid", "tid", "comm", "container", "conn", "opcode", "fin", "compressed",
           "payload_len", "captured_len", "truncated", "message", "origin", "violations"]
    if name == "lost":
        props["error"] = STR
        req.append("error")
    return record(name, title, props, req)


def conn_record(name, title, props, required):
    return record(name, title, {"ts": TS, "pid": PID, "comm": STR, "conn": CONN, **props},
                  ["ts", "pid", "comm", "conn", *required])


def process(name, title):
    props = {"ts": TS, "pid": PID, "comm": STR}
    req = ["ts", "pid", "comm"]
    if name == "process_exit":
        props["exit_code"] = INT
        req.append("exit_code")
    return record(name, title, props, req)


SCHEMAS = {
    "frame": frame("frame", "A WebSocket frame the traced process sent"),
    "lost": frame("lost", "A frame whose write failed: it never reached the client"),
    "conn_open": conn_record("conn_open", "A WebSocket connection followed from now on",
                             {"subprotocol": NULLSTR, "extensions": NULLSTR},
                             ["subprotocol", "extensions"]),
    "conn_close": conn_record("conn_close", "A followed connection ended",
                              {"frames": UINT, "reason": STR,
                               "close_code": {"type": ["integer", "null"]},
                               "lost_frames": UINT, "queued_at_close": UINT,
                               "buffered_unseen": BOOL,
                               "violations": VIOLATIONS},
                              ["frames", "reason"]),
    "queued": conn_record("queued",
                          "A write handed to the connection's transport (uvloop) that was still "
                          "queued when the connection ended: it never reached the socket",
                          {"closed_ts": TS, "tid": PID, "bytes": UINT,
                           "error": {"enum": ["queued_at_close"]}, "origin": ORIGIN,
                           "unattributed": STR,
                           "stack": {"type": "array", "items": {"type": "object"}},
                           "creators": {"type": "array", "items": {"type": "object"}},
                           "violations": VIOLATIONS},
                          ["closed_ts", "tid", "bytes", "error", "origin", "violations"]),
    "conn_skipped": record("conn_skipped",
                           "A connection not followed, or not through all its writers",
                           {"ts": TS, "pid": PID, "comm": STR,
                            "conn": {"oneOf": [CONN, {"type": "null"}]}, "reason": STR,
                            "fd": INT, "peer_pid": INT},
                           ["ts", "pid", "comm", "conn", "reason"]),
    "process_start": process("process_start", "A followed process runs a new program (exec)"),
    "process_fork": process("process_fork", "A child of a followed process, followed too"),
    "process_exit": process("process_exit", "A followed process exited"),
    "selfcheck": record("selfcheck", "The self-check of the capture path",
                        {"ts": TS, "ok": BOOL, "took_us": UINT, "reason": STR},
                        ["ts", "ok", "took_us"]),
    "stats": record("stats", "Counters: every drop and every gap by reason",
                    {"ts": TS, "final": BOOL, "events": UINT, "frames": UINT,
                     "processes": UINT, "drops": COUNTERS, "drops_total": UINT,
                     "identity_key": {"type": "object",
                                      "properties": {"source": STR, "fingerprint": STR},
                                      "required": ["source", "fingerprint"]}},
                    ["ts", "final", "events", "frames", "processes", "drops", "drops_total",
                     "identity_key"],
                    {"additionalProperties": {"anyOf": [COUNTERS, UINT, STR, BOOL]}}),
    "run": record("run", "A run (start ... end events) the policy's runs: section flags",
                  {"ts": TS, "pid": PID, "comm": STR,
                   "conn": {"type": "object", "properties": {"id": STR, "peer": NULLSTR},
                            "required": ["id"]},
                   "rule": STR, "reason": STR, "run": NULLSTR, "user": NULLSTR,
                   "last_type": NULLSTR, "origin": ORIGIN, "events": UINT, "start_seen": BOOL,
                   "first_ts": TS, "last_ts": TS, "detail": NULLSTR, "missing": {"type": "array"}},
                  ["ts", "pid", "conn", "rule", "reason", "run", "events", "detail"]),
    "run_summary": record("run_summary", "The end of `wsaudit run`: what it audited and found",
                          {"frames": UINT, "websocket_connections": UINT,
                           "violating_frames": UINT, "violations": COUNTERS,
                           "findings": {"type": "array", "items": {"type": "object"}},
                           "unattributed": COUNTERS, "note": STR,
                           "abrupt_closes": UINT, "records_lost": COUNTERS,
                           "runs": {"type": "object",
                                    "properties": {"completed": UINT,
                                                   "not_judged": COUNTERS},
                                    "required": ["completed", "not_judged"]}},
                          ["frames", "websocket_connections", "violating_frames",
                           "violations", "findings"]),
    "dropped": record("dropped", "Records a trace through the agent lost: it read too slowly",
                      {"records": UINT, "total": UINT, "reason": {"enum": ["slow_reader"]}},
                      ["records", "total", "reason"]),
}

if __name__ == "__main__":
    for name, s in SCHEMAS.items():
        with open(os.path.join(HERE, name + ".schema.json"), "w") as f:
            json.dump(s, f, indent=1)
            f.write("\n")
