"""The arrays of an uncompressed ``.npz`` read through memory maps: the operating system pages in
what is read and can drop it again, so a stage holds the parts of a large split it is using, not a
copy of the whole file.

Written by hand because NumPy's ``np.load(..., mmap_mode="r")`` maps a ``.npy`` file but silently
reads an ``.npz`` archive whole. Each member of an archive that ``np.savez`` wrote is a ``.npy`` file
stored without compression, so it lies contiguously in the archive: its array is mapped at the offset
where the member's data begins (found from the ZIP local header and the ``.npy`` header). A compressed
member (``np.savez_compressed``) is read into memory instead.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length (30 bytes)


def load_mapped(path: Path) -> dict[str, np.ndarray]:
    """Every array in ``path`` by its name, read-only: memory-mapped where stored uncompressed."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as file:
        for member in archive.infolist():
            name = member.filename.removesuffix(".npy")
            if member.compress_type != zipfile.ZIP_STORED:
                with archive.open(member) as stream:
                    arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
                arrays[name].flags.writeable = False
                continue
            file.seek(member.header_offset)
            signature, name_length, extra_length = LOCAL_HEADER.unpack(file.read(LOCAL_HEADER.size))
            if signature != b"PK\x03\x04":
                raise ValueError(f"{path} is not a readable .npz archive (member {member.filename})")
            file.seek(member.header_offset + LOCAL_HEADER.size + name_length + extra_length)
            version = np.lib.format.read_magic(file)
            shape, fortran_order, dtype = (
                np.lib.format.read_array_header_1_0(file) if version == (1, 0) else np.lib.format.read_array_header_2_0(file)
            )
            if dtype.hasobject:
                raise ValueError(f"{path}: member {member.filename} holds Python objects, which are not read")
            if 0 in shape:  # a memory map cannot be empty
                arrays[name] = np.empty(shape, dtype=dtype)
                arrays[name].flags.writeable = False
                continue
            order = "F" if fortran_order else "C"
            arrays[name] = np.memmap(file.name, dtype=dtype, mode="r", offset=file.tell(), shape=shape, order=order)
    return arrays
