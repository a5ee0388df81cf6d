"""What the upload tests share: an upload as the browser sends it, and the memory a call peaks at."""
from __future__ import annotations

import base64
import tracemalloc


def as_upload(data: bytes) -> str:
    """What ``dcc.Upload`` puts in ``contents``: a base64 data URL."""
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


def peak_mb(fn) -> float:
    """Peak traced memory (MB) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
