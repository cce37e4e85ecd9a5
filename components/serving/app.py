"""The FastAPI application behind `dlautoml serve`.

``POST /predict`` takes JSON (``rows`` for tables, ``images`` as base64 for images);
``POST /predict/images`` takes image file uploads; ``GET /health``; ``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict

from components.serving.batcher import MicroBatcher
from components.serving.inputs import (
    RequestError,
    base64_images,
    decode_images,
    predictions_json,
    rows_to_array,
    sequences_to_array,
    texts_to_array,
)
from components.serving.limits import BodyLimit, RequestLimits, TooLarge, check_count
from components.serving.model_store import LoadedModel, alias_version, load_version
from components.serving.request_log import RequestLog

logger = logging.getLogger("dlautoml.serving")


@dataclass
class ServingConfig:
    model_name: str
    alias: str = "champion"
    max_batch_size: int | None = None
    max_wait_ms: float = 5.0
    request_log: Path = Path("serving/requests.db")
    log_sample_rate: float = 1.0
    log_retention_days: float | None = 30.0
    limits: RequestLimits = field(default_factory=RequestLimits)
    reload_seconds: float = 5.0
    threads: int | None = None


class PredictRequest(BaseModel):
    """Exactly one of ``rows`` (table rows, lists or objects keyed by feature; categories as text),
    ``images`` (base64) or ``sequences`` (each a list of time steps, each a list of channel values)."""

    model_config = ConfigDict(extra="forbid")
    rows: list[list[float | str | None] | dict[str, float | str | None]] | None = None
    images: list[str] | None = None
    sequences: list[list[list[float | None]]] | None = None
    texts: list[str] | None = None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # the server's CPU seconds, resident memory, open files
        self.requests = Counter("dlautoml_requests", "Prediction requests answered", ["status"], registry=self.registry)
        self.errors = Counter("dlautoml_errors", "Prediction requests refused or failed", ["kind"], registry=self.registry)
        self.latency = Histogram(
            "dlautoml_request_latency_seconds",
            "Time from receiving a prediction request to answering it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "dlautoml_batch_size", "Rows per model call", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry
        )
        self.model_version = Gauge("dlautoml_model_version", "Registry version being served", ["model"], registry=self.registry)
        self.load_failures = Counter(
            "dlautoml_model_load_failures", "Failed attempts to load the version the alias points at", registry=self.registry
        )
        self.log_dropped = Counter(
            "dlautoml_request_log_dropped",
            "Answered requests left out of the request log (its writer fell behind)",
            registry=self.registry,
        )


DEGRADED_AFTER = 3  # failed loads in a row of the version the alias points at


class ModelHolder:
    """The version being served; swapped whole when the alias moves, so in-flight batches finish on the
    old one. A version that fails to load leaves the current one serving, and is counted: after
    ``DEGRADED_AFTER`` failures in a row, /health says the server is degraded and why."""

    def __init__(self, config: ServingConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.current: LoadedModel | None = None
        self.failures = 0
        self.wanted: str | None = None
        self.error = ""

    def load(self, version: str) -> None:
        model = load_version(self.config.model_name, version, self.config.threads)
        self.current = model
        self.metrics.model_version.labels(self.config.model_name).set(float(version))
        logger.info("serving %s version %s", self.config.model_name, version)

    async def follow_alias(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_seconds)
            try:
                version = await run_in_threadpool(alias_version, self.config.model_name, self.config.alias)
            except Exception as error:  # the registry is unreachable: keep serving the current version
                logger.warning("could not check the registry for a new %s: %s", self.config.alias, error)
                continue
            if version == self.current.version:
                self.failures, self.wanted, self.error = 0, None, ""
                continue
            try:
                await run_in_threadpool(self.load, version)
                self.failures, self.wanted, self.error = 0, None, ""
            except Exception as error:  # keep serving the current version, and say so
                self.failures += 1
                self.wanted, self.error = version, f"{type(error).__name__}: {error}"
                self.metrics.load_failures.inc()
                logger.warning(
                    "could not load %s version %s (failure %d): %s", self.config.model_name, version, self.failures, error
                )

    def health(self) -> dict:
        report = {
            "status": "degraded" if self.failures >= DEGRADED_AFTER else "ok",
            "model": self.config.model_name,
            "version": self.current.version,
            "alias": self.config.alias,
        }
        if self.failures:
            report.update({"alias_version": self.wanted, "load_failures": self.failures, "load_error": self.error})
        return report


def create_app(config: ServingConfig) -> FastAPI:
    metrics = Metrics()
    holder = ModelHolder(config, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(holder.load, await run_in_threadpool(alias_version, config.model_name, config.alias))
        max_batch = config.max_batch_size or holder.current.metadata.max_batch_size
        batcher = MicroBatcher(
            lambda batch, model: model.predict(batch), max_batch, config.max_wait_ms, on_batch=metrics.batch_size.observe
        )
        batcher.start()
        request_log = RequestLog(config.request_log, config.log_sample_rate, retention_days=config.log_retention_days)
        follower = asyncio.get_running_loop().create_task(holder.follow_alias())
        app.state.batcher, app.state.request_log = batcher, request_log
        try:
            yield
        finally:
            follower.cancel()
            await batcher.stop()
            request_log.close()

    app = FastAPI(title="dlautoml serving", lifespan=lifespan)

    def too_large() -> None:
        metrics.errors.labels("too_large").inc()
        metrics.requests.labels("refused").inc()

    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes, on_refused=too_large)

    async def answer(raw: np.ndarray, model: LoadedModel, started: float) -> dict:
        """Predicts with the version that decoded the request, and names it."""
        outputs = await app.state.batcher.submit(raw, model)
        predictions = predictions_json(outputs, model.metadata)
        latency = time.perf_counter() - started
        request_id = uuid.uuid4().hex
        if not app.state.request_log.record(
            config.model_name, model.version, raw, outputs, predictions, latency * 1000, request_id
        ):
            metrics.log_dropped.inc()
        metrics.latency.observe(latency)
        metrics.requests.labels("ok").inc()
        return {"model": config.model_name, "version": model.version, "request_id": request_id, "predictions": predictions}

    def refuse(error: Exception, kind: str) -> HTTPException:
        large = isinstance(error, TooLarge)
        metrics.errors.labels("too_large" if large else kind).inc()
        metrics.requests.labels("refused").inc()
        return HTTPException(status_code=413 if large else 400, detail=str(error))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        """A payload of the wrong shape (422) counts as a refused request like any other bad input. The
        errors are sent without the offending input, which may not be JSON (a NaN made this a 500)."""
        metrics.errors.labels("malformed_payload").inc()
        metrics.requests.labels("refused").inc()
        errors = [{key: value for key, value in item.items() if key in ("type", "loc", "msg")} for item in error.errors()]
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        """Any other failure is a 500 that /metrics counts."""
        metrics.errors.labels("internal").inc()
        metrics.requests.labels("failed").inc()
        logger.exception("request failed")
        return JSONResponse({"detail": f"internal error ({type(error).__name__})"}, 500)

    @app.post("/predict")
    async def predict(payload: PredictRequest) -> dict:
        started = time.perf_counter()
        model = holder.current  # decodes and predicts this request, even if the alias moves meanwhile
        metadata = model.metadata
        try:
            given = [name for name in ("rows", "images", "sequences", "texts") if getattr(payload, name) is not None]
            if len(given) != 1:
                raise RequestError(
                    "send exactly one of 'rows' (tables), 'images' (base64-encoded images), "
                    "'sequences' (lists of time steps) or 'texts' (strings)"
                )
            check_count(len(getattr(payload, given[0])), given[0], config.limits)
            if metadata.modality in ("tabular", "multimodal"):
                if payload.rows is None:
                    raise RequestError("this model reads table rows: send 'rows'")
                raw = await run_in_threadpool(rows_to_array, payload.rows, metadata, config.limits)
            elif metadata.modality == "text":
                if payload.texts is None:
                    raise RequestError("this model reads text: send 'texts', a list of strings")
                raw = await run_in_threadpool(texts_to_array, payload.texts, metadata)
            elif metadata.modality == "sequence":
                if payload.sequences is None:
                    raise RequestError(
                        "this model reads sequences: send 'sequences', each a list of time steps of channel values"
                    )
                raw = await run_in_threadpool(sequences_to_array, payload.sequences, metadata)
            else:
                if payload.images is None:
                    raise RequestError(
                        "this model reads images: send 'images' as base64 strings or POST files to /predict/images"
                    )
                raw = await run_in_threadpool(
                    lambda: decode_images(base64_images(payload.images), metadata.input_shape, config.limits)
                )
        except (RequestError, TooLarge) as error:
            raise refuse(error, "invalid_input") from error
        return await answer(raw, model, started)

    @app.post("/predict/images")
    async def predict_images(files: list[UploadFile] = File(...)) -> dict:
        started = time.perf_counter()
        model = holder.current
        metadata = model.metadata
        try:
            if metadata.modality != "image":
                raise RequestError(f"this model reads {metadata.modality} inputs, not images: POST JSON to /predict")
            check_count(len(files), "images", config.limits)
            blobs = [await upload.read() for upload in files]
            raw = await run_in_threadpool(decode_images, blobs, metadata.input_shape, config.limits)
        except (RequestError, TooLarge) as error:
            raise refuse(error, "invalid_input") from error
        return await answer(raw, model, started)

    @app.get("/health")
    async def health() -> dict:
        return holder.health()

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
