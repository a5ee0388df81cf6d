"""No eval, no exec, no pickle loading, no user-given file paths in the app and the core.

A scan of the source (comments and docstrings excluded, via the tokenizer) for the calls that
would turn user input into code or load untrusted objects, plus a check that every ``np.load``
passes ``allow_pickle=False``.
"""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("core", "visualizer") for p in (ROOT / d).rglob("*.py"))
FORBIDDEN = {
    r"(?<![.\w])eval\s*\(": "eval",
    r"(?<![.\w])exec\s*\(": "exec",
    r"(?<![.\w])compile\s*\(": "compile (builtin)",
    r"\b__import__\s*\(": "__import__",
    r"\bpickle\b": "pickle",
    r"\bcPickle\b|\bdill\b|\bcloudpickle\b|\bjoblib\b": "pickle-like loaders",
    r"\bmarshal\b": "marshal",
    r"\bshelve\b": "shelve",
    r"allow_pickle\s*=\s*True": "allow_pickle=True",
    r"\byaml\.(unsafe_)?load\s*\(": "yaml.load",
    r"\bos\.system\s*\(|\bos\.popen\s*\(": "os.system/os.popen",
    r"shell\s*=\s*True": "shell=True",
    r"\bsend_file\s*\(|\bsend_from_directory\s*\(": "serving files by path",
}


def code_only(path: Path) -> str:
    """The source of ``path`` without comments and string literals."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            continue
        out.append(tok.string)
    return re.sub(r"\s*\.\s*", ".", " ".join(out))  # "re . compile" -> "re.compile"


def test_sources_found():
    names = {p.name for p in SOURCES}
    assert {"bptt.py", "callbacks.py", "weights.py", "jobs.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_execution_or_pickle(path):
    code = code_only(path)
    found = [name for pattern, name in FORBIDDEN.items() if re.search(pattern, code)]
    assert found == [], f"{path.relative_to(ROOT)} uses {found}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_np_load_refuses_pickles(path):
    code = code_only(path)
    for match in re.finditer(r"\bnp\s*\.\s*load\s*\(", code):
        call = code[match.end(): match.end() + 300]
        assert re.search(r"allow_pickle\s*=\s*False", call), (
            f"{path.relative_to(ROOT)}: np.load without allow_pickle=False")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_opened_from_a_callback_argument(path):
    """Files are opened only from paths the code builds itself (package data, the cache folder):
    no ``open(...)`` / ``np.load(...)`` / ``Path(...)`` of a name that arrives from the browser."""
    code = code_only(path)
    user_names = r"(filename|contents|upload\w*|search|store|value|values|path_from_user)"
    for pattern in (rf"\bopen\s*\(\s*{user_names}\b", rf"\bPath\s*\(\s*{user_names}\b",
                    rf"\bnp\s*\.\s*load\s*\(\s*{user_names}\b"):
        assert not re.search(pattern, code), f"{path.relative_to(ROOT)}: {pattern}"
