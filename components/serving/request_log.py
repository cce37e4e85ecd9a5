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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import UserInputError, listing

ENDPOINT_FILE = "endpoint.json"  # written next to the log by a running server: its URL, for its /metrics

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT,
    received_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rows INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    inputs BLOB NOT NULL,
    outputs BLOB NOT NULL,
    predictions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    label TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (request_id, row)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Opens the log, creating its tables and bringing an older log's schema up to date."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect in a new log: pruning frees disk space
    connection.executescript(SCHEMA)
    columns = {row[1] for row in connection.execute("PRAGMA table_info(requests)")}
    if "request_id" not in columns:  # a log written before requests had ids
        connection.execute("ALTER TABLE requests ADD COLUMN request_id TEXT")
    return connection


def to_blob(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def from_blob(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


class RequestLog:
    """Writes logged requests from a background thread.

    The queue between requests and the writer is bounded (``max_pending``): when the disk falls behind,
    requests are answered and their records dropped (counted in ``dropped``), so memory stays bounded.
    Records older than ``retention_days`` are deleted as the log is written, except those that have
    labels (``dlautoml feedback``), which the next training run takes in; the write-ahead log is then
    truncated so that the files shrink.
    """

    def __init__(
        self,
        path: Path,
        sample_rate: float = 1.0,
        seed: int | None = None,
        max_pending: int = 1000,
        retention_days: float | None = None,
        prune_every_seconds: float = 600.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.random = random.Random(seed)
        self.pending: queue.Queue = queue.Queue(maxsize=max_pending)
        self.dropped = 0
        self.retention_days = retention_days
        self.prune_every = prune_every_seconds
        with connect(self.path) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        self.thread = threading.Thread(target=self._write, name="request-log", daemon=True)
        self.thread.start()

    def record(
        self,
        name: str,
        version: str,
        inputs: np.ndarray,
        outputs: np.ndarray,
        predictions: list,
        latency_ms: float,
        request_id: str = "",
    ) -> bool:
        """Queues a record (or leaves it out, at ``sample_rate``); False when the queue is full and
        the record was dropped."""
        if self.random.random() >= self.sample_rate:
            return True
        row = (request_id, time.time(), name, version, len(inputs), latency_ms, to_blob(inputs), to_blob(outputs))
        try:
            self.pending.put_nowait((*row, json.dumps(predictions)))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join(timeout=10)

    def _write(self) -> None:
        connection = sqlite3.connect(self.path)
        pruned = 0.0
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
                        "INSERT INTO requests (request_id, received_at, model_name, model_version, rows, latency_ms, inputs,"
                        " outputs, predictions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        batch,
                    )
                    connection.commit()
                if self.retention_days is not None and time.time() - pruned >= self.prune_every:
                    prune(connection, self.retention_days)
                    pruned = time.time()
                if item is None:
                    return
        finally:
            connection.close()


def prune(connection: sqlite3.Connection, retention_days: float) -> int:
    """Deletes records older than ``retention_days`` that have no labels, and truncates the
    write-ahead log; returns how many were deleted."""
    cutoff = time.time() - retention_days * 86400
    deleted = connection.execute(
        "DELETE FROM requests WHERE received_at < ? AND (request_id IS NULL OR request_id NOT IN"
        " (SELECT request_id FROM feedback))",
        (cutoff,),
    ).rowcount
    connection.commit()
    if deleted:
        connection.execute("PRAGMA incremental_vacuum")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return deleted


def read_requests(path: Path, since: float = 0.0, labelled_only: bool = False) -> list[dict]:
    """Logged requests received after ``since`` (a UNIX time), oldest first, with their arrays and
    any labels that arrived for their rows (``labels``: row index -> label); with ``labelled_only``,
    only requests that have labels."""
    labelled = " AND request_id IN (SELECT request_id FROM feedback)" if labelled_only else ""
    with connect(path) as connection:
        rows = connection.execute(
            "SELECT request_id, received_at, model_name, model_version, rows, latency_ms, inputs, outputs, predictions"
            f" FROM requests WHERE received_at > ?{labelled} ORDER BY id",
            (since,),
        ).fetchall()
        labels: dict[str, dict[int, str]] = {}
        for request_id, row, label in connection.execute("SELECT request_id, row, label FROM feedback"):
            labels.setdefault(request_id, {})[row] = label
    return [
        {
            "request_id": row[0],
            "received_at": row[1],
            "model_name": row[2],
            "model_version": row[3],
            "rows": row[4],
            "latency_ms": row[5],
            "inputs": from_blob(row[6]),
            "outputs": from_blob(row[7]),
            "predictions": json.loads(row[8]),
            "labels": labels.get(row[0], {}),
        }
        for row in rows
    ]


READ_CHUNK = 100_000  # requests read at a time when a window is scanned
LATENCY_SAMPLE = 100_000  # request latencies kept for the percentiles, at most


@dataclass
class Window:
    """The requests logged in a monitoring window: how many, how many input rows, when the first
    arrived, a uniform sample of at most ``LATENCY_SAMPLE`` of their latencies, and a uniform sample
    of at most ``max_rows`` of their input rows with the outputs logged for them."""

    requests: int
    total_rows: int
    first_received: float
    latency_ms: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray


def read_window(path: Path, since: float, max_rows: int, until: float = float("inf"), seed: int = 0) -> Window:
    """Reads a window in bounded memory, whatever its size: its requests are scanned ``READ_CHUNK`` at
    a time (a week at 100 requests a second is 60 million), and the arrays of only the requests that
    hold a sampled row are read. One request of 100,000 rows once made the drift test ask for 160 GB;
    the tests now see a uniform sample of ``max_rows`` rows however large the window."""
    where = "FROM requests WHERE received_at > ? AND received_at <= ?"
    rng = np.random.default_rng(seed)
    with connect(path) as connection:
        requests, total, first = connection.execute(
            f"SELECT COUNT(*), COALESCE(SUM(rows), 0), MIN(received_at) {where}", (since, until)
        ).fetchone()
        picked = np.arange(total) if total <= max_rows else np.sort(rng.choice(total, max_rows, replace=False))
        timed = (
            np.arange(requests) if requests <= LATENCY_SAMPLE else np.sort(rng.choice(requests, LATENCY_SAMPLE, replace=False))
        )
        owners: list[tuple[int, np.ndarray]] = []  # (request id, offsets of its picked rows)
        latencies: list[np.ndarray] = []
        cursor = connection.execute(f"SELECT id, rows, latency_ms {where} ORDER BY id", (since, until))
        seen = first_row = 0
        while chunk := cursor.fetchmany(READ_CHUNK):
            block = np.array(chunk, dtype=np.float64)
            ids, rows = block[:, 0].astype(np.int64), block[:, 1].astype(np.int64)
            ends = first_row + np.cumsum(rows)
            inside = picked[(picked >= first_row) & (picked < ends[-1])]
            positions = np.searchsorted(ends, inside, side="right")  # the request each picked row is in
            holders, starts = np.unique(positions, return_index=True)
            for position, offsets in zip(holders, np.split(inside, starts[1:]) if len(inside) else [], strict=True):
                owners.append((int(ids[position]), offsets - (ends[position] - rows[position])))
            kept = timed[(timed >= seen) & (timed < seen + len(chunk))] - seen
            latencies.append(block[kept, 2])
            seen, first_row = seen + len(chunk), int(ends[-1])
        inputs, outputs = [], []
        for request, offsets in owners:
            blobs = connection.execute("SELECT inputs, outputs FROM requests WHERE id = ?", (request,)).fetchone()
            inputs.append(from_blob(blobs[0])[offsets])
            outputs.append(from_blob(blobs[1])[offsets])
    return Window(
        requests=int(requests),
        total_rows=int(total),
        first_received=float(first) if first is not None else 0.0,
        latency_ms=np.concatenate(latencies) if latencies else np.empty(0),
        inputs=np.concatenate(inputs) if inputs else np.empty((0,)),
        outputs=np.concatenate(outputs) if outputs else np.empty((0,)),
    )


def add_feedback(path: Path, labels: list[tuple[str, int, str]]) -> tuple[int, list[str]]:
    """Stores true labels for logged requests; returns how many were stored and the unknown request ids.

    Raises:
        UserInputError: a label names a row its request does not have (rows count from 0); nothing
            is stored then.
    """
    with connect(path) as connection:
        known = dict(connection.execute("SELECT request_id, rows FROM requests"))
        outside = [
            f"{request_id} row {row} (it has {known[request_id]})"
            for request_id, row, _ in labels
            if request_id in known and not 0 <= row < known[request_id]
        ]
        if outside:
            raise UserInputError(
                f"{len(outside):,} label(s) name a row their request does not have: {listing(outside)}; "
                "a request's rows are numbered from 0"
            )
        accepted = [(request_id, row, label, time.time()) for request_id, row, label in labels if request_id in known]
        connection.executemany("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)", accepted)
    unknown = sorted({request_id for request_id, _, _ in labels if request_id not in known})
    return len(accepted), unknown


def check_request_log(path: Path) -> None:
    """Raises :class:`UserInputError` when the request log cannot be created or written at ``path``
    (a server would otherwise fail on its first request, with a traceback)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect(path).close()
    except (OSError, sqlite3.Error) as error:
        raise UserInputError(f"the request log {path} cannot be written ({error}): choose another --request-log") from error


def release_endpoint(endpoint: Path) -> None:
    """Removes a server's endpoint file when it stops, if the file is still that server's own (a
    second server refused on a busy port must not remove the running one's)."""
    import os

    try:
        owner = json.loads(Path(endpoint).read_text()).get("pid")
    except (OSError, ValueError):
        return
    if owner == os.getpid():
        Path(endpoint).unlink(missing_ok=True)
