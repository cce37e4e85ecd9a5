"""The request log that monitoring reads: inputs and outputs of (a sample of) served requests.

SQLite in WAL mode, written by one background thread so that requests never wait on the disk;
the file outlives server restarts.
"""

from __future__ import annotations

import io
import json
import queue
import random
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rows INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    inputs BLOB NOT NULL,
    outputs BLOB NOT NULL,
    predictions TEXT NOT NULL
)
"""


def to_blob(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def from_blob(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


class RequestLog:
    def __init__(self, path: Path, sample_rate: float = 1.0, seed: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.random = random.Random(seed)
        self.pending: queue.Queue = queue.Queue()
        with sqlite3.connect(self.path) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
        self.thread = threading.Thread(target=self._write, name="request-log", daemon=True)
        self.thread.start()

    def record(
        self, name: str, version: str, inputs: np.ndarray, outputs: np.ndarray, predictions: list, latency_ms: float
    ) -> None:
        if self.random.random() >= self.sample_rate:
            return
        self.pending.put(
            (time.time(), name, version, len(inputs), latency_ms, to_blob(inputs), to_blob(outputs), json.dumps(predictions))
        )

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join(timeout=10)

    def _write(self) -> None:
        connection = sqlite3.connect(self.path)
        try:
            while True:
                item = self.pending.get()
                batch = [] if item is None else [item]
                while item is not None and not self.pending.empty() and len(batch) < 500:
                    item = self.pending.get()
                    if item is not None:
                        batch.append(item)
                if batch:
                    connection.executemany(
                        "INSERT INTO requests (received_at, model_name, model_version, rows, latency_ms, inputs, outputs, predictions)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        batch,
                    )
                    connection.commit()
                if item is None:
                    return
        finally:
            connection.close()


def read_requests(path: Path, since: float = 0.0) -> list[dict]:
    """Logged requests received after ``since`` (a UNIX time), oldest first, with their arrays."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT received_at, model_name, model_version, rows, latency_ms, inputs, outputs, predictions"
            " FROM requests WHERE received_at > ? ORDER BY id",
            (since,),
        ).fetchall()
    return [
        {
            "received_at": row[0],
            "model_name": row[1],
            "model_version": row[2],
            "rows": row[3],
            "latency_ms": row[4],
            "inputs": from_blob(row[5]),
            "outputs": from_blob(row[6]),
            "predictions": json.loads(row[7]),
        }
        for row in rows
    ]
