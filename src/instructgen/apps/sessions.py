"""Support-bot sessions in SQLite (stdlib sqlite3): users, messages, escalation, resumable by id.

Everything is redacted (instructgen.safety.redact) before it is written, so the database never
holds raw e-mail addresses, phone numbers, ID or card numbers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError
from instructgen.safety import redact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL DEFAULT '{}',
    escalated INTEGER NOT NULL DEFAULT 0,
    escalation_reason TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    turn INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    PRIMARY KEY (session_id, turn)
);
"""


def scrub(value: Any) -> Any:
    """`value` with PII redacted in every string it holds (lists and dicts walked)."""
    if isinstance(value, str):
        return redact(value)[0]
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    return value


class SessionStore:
    """Sessions and their messages; ":memory:" keeps them for the life of the object only."""

    def __init__(self, path: str | Path = ":memory:"):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def open(self, session_id: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
        """The session `session_id` (created when new); a given user profile replaces the stored one."""
        if not session_id or len(session_id) > 200:
            raise ConfigError("a session id is 1 to 200 characters", field="session")
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO sessions (id, created, updated) VALUES (?, ?, ?)",
                (session_id, now, now),
            )
            if user is not None:
                self._db.execute(
                    "UPDATE sessions SET user = ?, updated = ? WHERE id = ?",
                    (json.dumps(scrub(user), ensure_ascii=False), now, session_id),
                )
        return self.get(session_id) or {}

    def get(self, session_id: str) -> dict[str, Any] | None:
        """{id, user, escalated, escalation_reason, messages: [{role, content, citations}]} or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            messages = self._db.execute(
                "SELECT role, content, citations FROM messages WHERE session_id = ? ORDER BY turn",
                (session_id,),
            ).fetchall()
        return {
            "id": row["id"],
            "user": json.loads(row["user"]),
            "escalated": bool(row["escalated"]),
            "escalation_reason": row["escalation_reason"],
            "messages": [
                {
                    "role": m["role"],
                    "content": m["content"],
                    "citations": json.loads(m["citations"]),
                }
                for m in messages
            ],
        }

    def add(self, session_id: str, role: str, content: str, citations: list[str] = ()) -> None:
        """Append one message (redacted) to the session."""
        now = time.time()
        with self._lock, self._db:
            (turn,) = self._db.execute(
                "SELECT COALESCE(MAX(turn), -1) + 1 FROM messages WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            self._db.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, turn, role, scrub(content), json.dumps(list(citations)), now),
            )
            self._db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))

    def escalate(self, session_id: str, reason: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE sessions SET escalated = 1, escalation_reason = ?, updated = ? WHERE id = ?",
                (reason, time.time(), session_id),
            )

    def escalated(self) -> list[str]:
        """Ids of the sessions waiting for a human, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM sessions WHERE escalated = 1 ORDER BY updated"
            ).fetchall()
        return [r["id"] for r in rows]
