"""Turning request payloads into the raw arrays the deployed ONNX graph expects.

Every problem raises :class:`RequestError` with a message that names it; the server answers 400.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from components.data.sources import images_to_array
from components.serving.model_store import ServingMetadata


class RequestError(ValueError):
    """The request cannot be turned into model inputs."""


def rows_to_array(rows: list, metadata: ServingMetadata) -> np.ndarray:
    """Table rows as lists (in feature order) or objects keyed by feature name; null is a missing value."""
    names = metadata.feature_names
    if not rows:
        raise RequestError("'rows' is empty: send at least one row")
    array = np.empty((len(rows), len(names)), dtype=np.float32)
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            missing = [name for name in names if name not in row]
            if missing:
                raise RequestError(f"row {index} lacks the features {', '.join(missing)}")
            values = [row[name] for name in names]
        elif isinstance(row, list):
            if len(row) != len(names):
                raise RequestError(f"row {index} has {len(row)} values, the model takes {len(names)} ({', '.join(names)})")
            values = row
        else:
            raise RequestError(f"row {index} must be a list of numbers or an object keyed by feature name")
        try:
            array[index] = [np.nan if value is None else float(value) for value in values]
        except (TypeError, ValueError) as error:
            raise RequestError(f"row {index} holds a value that is not a number: {error}") from error
    return array


def decode_images(blobs: list[bytes], metadata: ServingMetadata) -> np.ndarray:
    """Encoded images (PNG, JPEG, ...) resized and converted like the training images."""
    if not blobs:
        raise RequestError("no images in the request")
    images = []
    for index, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                image.load()
                images.append(image.copy())
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise RequestError(f"image {index} cannot be decoded ({type(error).__name__})") from error
    channels, height, width = metadata.input_shape
    return images_to_array(images, channels, height, width)


def base64_images(encoded: list[str]) -> list[bytes]:
    blobs = []
    for index, text in enumerate(encoded):
        try:
            blobs.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError) as error:
            raise RequestError(f"image {index} is not valid base64") from error
    return blobs


def predictions_json(outputs: np.ndarray, metadata: ServingMetadata) -> list[dict]:
    if metadata.task_type == "classification":
        names = metadata.class_names
        return [
            {"label": names[int(np.argmax(row))], "probabilities": {name: float(p) for name, p in zip(names, row)}}
            for row in outputs
        ]
    return [{"value": float(row[0])} for row in outputs]
