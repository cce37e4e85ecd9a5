"""Turning request payloads into the raw arrays the deployed ONNX graph expects.

Every problem raises :class:`RequestError` with a message that names it; the server answers 400.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from components.data.images import images_to_array
from components.data.tables import category_text
from components.serving.limits import RequestLimits, TooLarge, check_pixels
from components.serving.model_store import ServingMetadata


class RequestError(ValueError):
    """The request cannot be turned into model inputs."""


def rows_to_array(rows: list, metadata: ServingMetadata, limits: RequestLimits = RequestLimits()) -> np.ndarray:
    """Table rows as lists (in feature order) or objects keyed by feature name; null is a missing value.

    Categorical columns take their values as text (or numbers), looked up in the training data's
    vocabulary; a value the model has not seen is the unknown category.
    """
    if metadata.modality == "multimodal":
        return _multimodal_rows(rows, metadata, limits)
    return _table_array(rows, metadata.feature_names, metadata.category_index)


def _table_array(rows: list, names: list[str], category_index: dict[str, dict[str, int]]) -> np.ndarray:
    lookups = {names.index(column): index for column, index in category_index.items() if column in names}
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
            with np.errstate(over="ignore"):  # a number beyond float32 becomes infinite, refused below
                array[index] = [
                    np.nan
                    if value is None
                    else lookups[column].get(category_text(value), 0)
                    if column in lookups
                    else float(value)
                    for column, value in enumerate(values)
                ]
        except (TypeError, ValueError) as error:
            raise RequestError(f"row {index} holds a value that is not a number: {error}") from error
    _refuse_infinite(array, names)
    return array


def _refuse_infinite(array: np.ndarray, names: list[str]) -> None:
    """``Infinity``, ``1e309`` or ``"inf"`` (and numbers beyond float32, which become infinite) would be
    answered with a label and no probabilities: they are refused, naming the first."""
    infinite = np.argwhere(np.isinf(array.reshape(len(array), -1)))
    if len(infinite):
        row, column = (int(value) for value in infinite[0])
        raise RequestError(
            f"row {row}, '{names[column % len(names)]}' is infinite ({len(infinite)} such value(s)): send finite "
            "numbers, and null for a missing one"
        )


def _multimodal_rows(rows: list, metadata: ServingMetadata, limits: RequestLimits) -> np.ndarray:
    """Rows holding the table's columns and the text column (or the image column, a base64-encoded
    image): table values, then the text's codes (or the image's pixels)."""
    last = metadata.feature_names[-1]
    values, table_rows = [], []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            if last not in row:
                raise RequestError(f"row {index} lacks the {'image' if metadata.image_shape else 'text'} column '{last}'")
            values.append(row[last])
            table_rows.append({key: value for key, value in row.items() if key != last})
        elif isinstance(row, list) and row:
            values.append(row[-1])
            table_rows.append(row[:-1])
        else:
            kind = "the image (base64)" if metadata.image_shape else "the text"
            raise RequestError(f"row {index} must be an object keyed by column, or a list ending with {kind}")
    if metadata.image_shape:
        if not all(isinstance(value, str) for value in values):
            raise RequestError(f"'{last}' must be a base64-encoded image (PNG, JPEG, ...)")
        pixels = decode_images(base64_images(values), metadata.image_shape, limits)
        second = pixels.reshape(len(pixels), -1).astype(np.float32)
    else:
        from components.data.text import encode_texts

        if not all(value is None or isinstance(value, str) for value in values):
            raise RequestError(f"'{last}' must be text")
        second = encode_texts([value or "" for value in values], metadata.category_index[last], metadata.text_length)
    return np.concatenate([_table_array(table_rows, metadata.feature_names[:-1], metadata.category_index), second], axis=1)


def texts_to_array(texts: list[str], metadata: ServingMetadata) -> np.ndarray:
    """Texts as token codes of the training data's vocabulary (words it does not know count as unknown)."""
    from components.data.text import encode_texts

    if not texts:
        raise RequestError("'texts' is empty: send at least one text")
    column = metadata.feature_names[0]
    return encode_texts(texts, metadata.category_index[column], metadata.input_shape[0])


def sequences_to_array(sequences: list, metadata: ServingMetadata) -> np.ndarray:
    """Sequences as lists of time steps (each a list of channel values; null is missing), padded with
    missing steps to the length the model takes."""
    length, channels = metadata.input_shape
    if not sequences:
        raise RequestError("'sequences' is empty: send at least one sequence")
    array = np.full((len(sequences), length, channels), np.nan, dtype=np.float32)
    for index, sequence in enumerate(sequences):
        if not sequence:
            raise RequestError(f"sequence {index} has no time steps")
        if len(sequence) > length:
            raise RequestError(f"sequence {index} has {len(sequence)} steps, the model takes at most {length}")
        for step, values in enumerate(sequence):
            if len(values) != channels:
                raise RequestError(
                    f"sequence {index}, step {step} has {len(values)} values, the model takes {channels} ({', '.join(metadata.feature_names)})"
                )
            try:
                array[index, step] = [np.nan if value is None else float(value) for value in values]
            except (TypeError, ValueError) as error:
                raise RequestError(f"sequence {index}, step {step} holds a value that is not a number: {error}") from error
    _refuse_infinite(array, metadata.feature_names)
    return array


def decode_images(blobs: list[bytes], shape: list[int], limits: RequestLimits = RequestLimits()) -> np.ndarray:
    """Encoded images (PNG, JPEG, ...) resized and converted like the training images (to ``shape``:
    channels, height, width). An image's size is checked from its header, before it is decoded: a
    10,000 x 10,000 PNG of a few kilobytes decodes to gigabytes."""
    if not blobs:
        raise RequestError("no images in the request")
    images = []
    for index, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                check_pixels(*image.size, index, limits)
                image.load()
                images.append(image.copy())
        except Image.DecompressionBombError as error:  # larger still than PIL's own limit
            raise TooLarge(f"image {index} is too large to decode ({error}); send it resized") from error
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise RequestError(f"image {index} cannot be decoded ({type(error).__name__})") from error
    channels, height, width = shape
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
