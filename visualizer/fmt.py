"""Numbers as a student reads them: three significant digits, powers of ten as m·10ⁿ."""
from __future__ import annotations

import math

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
SUBSCRIPT = str.maketrans("-0123456789", "₋₀₁₂₃₄₅₆₇₈₉")


def num(x, digits=3) -> str:
    """``x`` to ``digits`` significant digits: plain between 10^-3 and 10^4, else as m·10ⁿ."""
    x = float(x)
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}·10{str(int(exponent)).translate(SUPERSCRIPT)}"


def sub(n) -> str:
    """An integer as subscript digits (h₉₉)."""
    return str(int(n)).translate(SUBSCRIPT)


def pct(x) -> str:
    """A share as a percentage to three significant digits ("0%" when exactly zero)."""
    return f"{num(100 * float(x))}%"


def rate(x) -> str:
    """A per-step factor, "×0.568"."""
    return f"×{num(x)}"


def decades(x) -> str:
    """Orders of magnitude of a positive ratio, to three significant digits."""
    return num(abs(math.log10(x))) if x > 0 and math.isfinite(x) else "NaN"


def mib(b) -> str:
    """Bytes as KiB, MiB or GiB to three significant digits."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if b >= size:
            return f"{num(b / size)} {unit}"
    return f"{num(b / 2**10)} KiB"
