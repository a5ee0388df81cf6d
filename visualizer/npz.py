"""Reading an ``.npz`` held in memory when its bytes come from a stranger.

Everything is bounded before it is allocated: the file size, then the zip's central directory
(member count, names, duplicates, encryption, compression method, declared and compressed
sizes, compression ratio), then each member's NPY header (magic, version, header length,
dtype, declared shape x itemsize, which must equal the bytes the member holds). Only then is
data decoded, with ``allow_pickle=False``. Every problem raises :class:`WeightsError` with a
message naming the member and what is wrong.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

MAX_BYTES = 20 * 1024 * 1024  # the uploaded file
MAX_UNCOMPRESSED = 4 * MAX_BYTES  # the arrays inside it, all together
MAX_MEMBERS = 64  # arrays in one file (a 4-layer model has 19)
MAX_RATIO = 100  # uncompressed / compressed size of one member larger than RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_HEADER = 10_000  # bytes of one NPY header (NumPy's own limit)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"

class WeightsError(ValueError):
    """An uploaded weights file that cannot be used; the message says why."""


@dataclass(frozen=True)
class ArraySpec:
    """What an NPY header declares (read before any data is decoded)."""

    shape: tuple
    dtype: np.dtype
    fortran_order: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _mb(n: int) -> str:
    """Bytes as megabytes for a message."""
    return f"{n / 1024 / 1024:.1f} MB"


def _name(text: str) -> str:
    """A member or key name, quoted and bounded, for a message."""
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


def decode_upload(contents) -> bytes:
    """The file bytes of a ``dcc.Upload`` ``contents`` string (``data:...;base64,...``) or of bytes.

    The size limit is checked on the base64 text before decoding.
    """
    if isinstance(contents, (bytes, bytearray)):
        data = bytes(contents)
    elif isinstance(contents, str):
        _, sep, b64 = contents.partition(",")
        b64 = b64 if sep else contents
        if len(b64) * 3 // 4 > MAX_BYTES + 3:
            raise WeightsError(f"The file is larger than the {_mb(MAX_BYTES)} limit "
                               f"(about {_mb(len(b64) * 3 // 4)}).")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise WeightsError("The upload could not be read (it is not valid base64 data).") from None
    else:
        raise WeightsError("No file was uploaded.")
    if len(data) > MAX_BYTES:
        raise WeightsError(f"The file is {_mb(len(data))}, larger than the {_mb(MAX_BYTES)} limit.")
    return data


def _members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The zip's members, checked from the central directory alone (count, names, sizes, ratio)."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WeightsError(f"The .npz holds {len(infos)} arrays; at most {MAX_MEMBERS} are accepted.")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise WeightsError(f"The arrays unpack to {_mb(total)}, more than the {_mb(MAX_UNCOMPRESSED)} limit.")
    seen = set()
    for i in infos:
        if not i.filename.endswith(".npy"):
            raise WeightsError(f"The .npz contains {_name(i.filename)}, which is not a .npy array.")
        if i.filename in seen:
            raise WeightsError(f"The .npz contains {_name(i.filename)} twice; each array must appear once.")
        seen.add(i.filename)
        if i.flag_bits & 0x1:
            raise WeightsError(f"Member {_name(i.filename)} is encrypted.")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WeightsError(f"Member {_name(i.filename)} uses an unsupported compression; save with "
                               f"np.savez or np.savez_compressed.")
        if i.file_size > RATIO_FLOOR and i.file_size > MAX_RATIO * max(1, i.compress_size):
            raise WeightsError(f"Member {_name(i.filename)} unpacks {i.file_size // max(1, i.compress_size):,} times "
                               f"larger than it is stored (at most {MAX_RATIO}x is accepted): save with np.savez.")
    return infos


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArraySpec:
    """The checked NPY header of one member: magic, version, dtype, declared size == stored size."""
    name = _name(info.filename)
    with zf.open(info) as f:
        head = f.read(8)
        if not head.startswith(NPY_MAGIC):
            if head.startswith(b"PK"):
                raise WeightsError(f"Member {name} is a zip archive inside the .npz, not an .npy array.")
            raise WeightsError(f"Member {name} is named .npy but is not an NPY array (no NPY magic bytes).")
        version = (head[6], head[7]) if len(head) == 8 else None
        if version not in ((1, 0), (2, 0)):
            raise WeightsError(f"Member {name} has NPY format version {version}; save it with NumPy's np.savez.")
        size_bytes = 2 if version == (1, 0) else 4
        raw_len = f.read(size_bytes)
        length = int.from_bytes(raw_len, "little") if len(raw_len) == size_bytes else -1
        if not 0 < length <= MAX_HEADER:
            raise WeightsError(f"Member {name} has a damaged NPY header (length {length}).")
        text = f.read(length)
    if len(text) < length:
        raise WeightsError(f"Member {name} is truncated inside its NPY header.")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read(io.BytesIO(raw_len + text), max_header_size=MAX_HEADER)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, UnicodeError):
        raise WeightsError(f"Member {name} has an NPY header that cannot be read.") from None
    if dtype.hasobject:
        raise WeightsError(f"Array {_name(info.filename[:-4])} holds Python objects (pickled data), which are never "
                           f"loaded; save plain numeric arrays.")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufcSU" or dtype.itemsize > 1024:
        raise WeightsError(f"Array {_name(info.filename[:-4])} has dtype {str(dtype)[:40]}; "
                           f"weights must be real numbers.")
    if any(n < 0 for n in shape) or len(shape) > 8:
        raise WeightsError(f"Array {_name(info.filename[:-4])} declares an invalid shape.")
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_UNCOMPRESSED:
        raise WeightsError(f"Array {_name(info.filename[:-4])} declares shape {str(shape)[:80]} of {dtype} "
                           f"({_mb(declared)}), more than the {_mb(MAX_UNCOMPRESSED)} limit.")
    stored = info.file_size - 8 - size_bytes - length
    if stored != declared:
        what = "is truncated" if stored < declared else "has extra bytes after its data"
        raise WeightsError(f"Array {_name(info.filename[:-4])} {what}: its header declares {declared:,} bytes of "
                           f"data, the file holds {max(0, stored):,}.")
    return ArraySpec(tuple(shape), dtype, bool(fortran))


def _zip(data: bytes) -> zipfile.ZipFile:
    """The zip archive of an .npz held in memory (size and magic checked first)."""
    if len(data) > MAX_BYTES:
        raise WeightsError(f"The file is {_mb(len(data))}, larger than the {_mb(MAX_BYTES)} limit.")
    if data.startswith(NPY_MAGIC):
        raise WeightsError("This is a single .npy array, not an .npz: save the state dict with "
                           "np.savez('model.npz', **state_dict).")
    if not data.startswith(ZIP_MAGIC):
        raise WeightsError("This is not an .npz file (an .npz is a zip archive of .npy arrays, "
                           "written by np.savez).")
    return zipfile.ZipFile(io.BytesIO(data))


READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError,
               NotImplementedError, RuntimeError, zlib.error, struct.error, OverflowError, MemoryError)


def read_headers(data: bytes) -> dict[str, ArraySpec]:
    """What every array of an ``.npz`` held in memory declares, checked before any data is decoded."""
    try:
        with _zip(data) as zf:
            specs = {i.filename[:-4]: _header(zf, i) for i in _members(zf)}
    except WeightsError:
        raise
    except READ_ERRORS as e:
        raise WeightsError(f"The .npz file is damaged and could not be read ({type(e).__name__}).") from None
    if not specs:
        raise WeightsError("The .npz file is empty.")
    return specs


def read_npz(data: bytes, keys=None) -> dict[str, np.ndarray]:
    """The arrays (all, or those named in ``keys``) of an ``.npz`` held in memory, each decoded
    after its header was checked (:func:`read_headers`); never unpickles."""
    specs = read_headers(data)
    arrays = {}
    try:
        with _zip(data) as zf:
            for name in specs if keys is None else keys:
                with zf.open(name + ".npy") as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False, max_header_size=MAX_HEADER)
    except READ_ERRORS as e:
        raise WeightsError(f"The .npz file is damaged and could not be read ({type(e).__name__} "
                           f"in {_name(name)}).") from None
    return arrays
