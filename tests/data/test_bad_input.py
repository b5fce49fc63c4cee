"""Property tests: every loader, fed damaged input, either loads it or raises one DataError that
names the file - never another exception type, never a silent partial result.

Damage is generated from valid files (a real XQuAD-R article, real MIRACL topics and qrels, a
corpus, training pairs, a study config): bytes cut, bytes replaced (including invalid UTF-8),
lines dropped or duplicated, JSON values deleted or replaced by values of other types.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from langmix.data.errors import DataError
from langmix.data.lareqa import read_lareqa_file
from langmix.data.miracl import read_corpus, read_qrels, read_topics
from langmix.data.pairs import read_pairs_jsonl

EXAMPLES = 150
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- damage


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10_000),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(0, 50), max_size=3),
    st.just({}),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def damaged_json(draw, document: Any) -> Any:
    """The document with one value deleted or replaced, somewhere in its tree."""
    document = json.loads(json.dumps(document))
    paths = [p for p in _paths(document) if p]
    path = draw(st.sampled_from(paths))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return document


@st.composite
def damaged_bytes(draw, data: bytes) -> bytes:
    """The bytes cut short, or with a short run replaced (possibly by invalid UTF-8)."""
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data) - 1))]
    start = draw(st.integers(0, len(data) - 1))
    junk = draw(st.one_of(st.binary(min_size=1, max_size=4), st.just(b"\xff\xfe")))
    return data[:start] + junk + data[start + len(junk) :]


@st.composite
def damaged_lines(draw, text: str) -> str:
    """Lines dropped, duplicated, or one field of a tab/JSON line mangled."""
    lines = text.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(["drop", "duplicate", "blank-field", "extra-field", "empty"]))
    if action == "drop":
        del lines[i]
    elif action == "duplicate":
        lines.insert(i, lines[i])
    elif action == "blank-field":
        lines[i] = lines[i].replace("\t", "\t ", 1) if "\t" in lines[i] else lines[i][:-3]
    elif action == "extra-field":
        lines[i] = lines[i] + "\tx"
    else:
        lines = []
    return "\n".join(lines) + ("\n" if lines else "")


def _loads_or_names_the_file(load, path: Path) -> None:
    try:
        load(path)
    except DataError as exc:
        assert str(path) in str(exc), str(exc)
        # Either where in the file the problem is, or what to do about a whole-file problem.
        assert exc.record or exc.fix, str(exc)


# ----------------------------------------------------------------------------- LAReQA


@pytest.fixture(scope="module")
def lareqa_article(data_dir: Path) -> dict:
    raw = json.loads((data_dir / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    article = raw["data"][0]
    return {
        "version": raw.get("version"),
        "data": [{**article, "paragraphs": article["paragraphs"][:2]}],
    }


@SETTINGS
@given(data=st.data())
def test_lareqa_json_damage(tmp_path, lareqa_article, data):
    path = tmp_path / "de.json"
    path.write_text(json.dumps(data.draw(damaged_json(lareqa_article))), encoding="utf-8")
    _loads_or_names_the_file(lambda p: read_lareqa_file(p, "de"), path)


@SETTINGS
@given(data=st.data())
def test_lareqa_byte_damage(tmp_path, lareqa_article, data):
    path = tmp_path / "de.json"
    path.write_bytes(data.draw(damaged_bytes(json.dumps(lareqa_article).encode())))
    _loads_or_names_the_file(lambda p: read_lareqa_file(p, "de"), path)


# ----------------------------------------------------------------------------- MIRACL


@pytest.fixture(scope="module")
def miracl_files(data_dir: Path) -> dict[str, str]:
    stem = "miracl-v1.0-yo-dev.tsv"
    topics = (data_dir / "miracl" / "topics" / f"topics.{stem}").read_text(encoding="utf-8")
    qrels = (data_dir / "miracl" / "qrels" / f"qrels.{stem}").read_text(encoding="utf-8")
    corpus = "".join(
        json.dumps({"docid": f"d{i}", "title": "t", "text": f"passage {i}"}) + "\n"
        for i in range(20)
    )
    return {
        "topics": "\n".join(topics.splitlines()[:20]) + "\n",
        "qrels": "\n".join(qrels.splitlines()[:30]) + "\n",
        "corpus": corpus,
    }


READERS = {"topics": read_topics, "qrels": read_qrels, "corpus": read_corpus}


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)))
def test_miracl_line_damage(tmp_path, miracl_files, data, kind):
    path = tmp_path / f"{kind}.txt"
    path.write_text(data.draw(damaged_lines(miracl_files[kind])), encoding="utf-8")
    _loads_or_names_the_file(READERS[kind], path)


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)))
def test_miracl_byte_damage(tmp_path, miracl_files, data, kind):
    path = tmp_path / f"{kind}.txt"
    path.write_bytes(data.draw(damaged_bytes(miracl_files[kind].encode())))
    _loads_or_names_the_file(READERS[kind], path)


# ------------------------------------------------------------------- training pairs JSONL

PAIRS = "".join(
    json.dumps(
        {
            "id": f"q{i // 2}",
            "language": "de" if i % 2 else "en",
            "query": f"frage {i}",
            "positive": f"antwort {i}",
            "group": f"g{i // 4}",
            "negatives": [f"neg {i}"],
        }
    )
    + "\n"
    for i in range(16)
)


@SETTINGS
@given(data=st.data())
def test_training_pairs_damage(tmp_path, data):
    path = tmp_path / "pairs.jsonl"
    lines = PAIRS.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    if data.draw(st.booleans()):
        lines[i] = json.dumps(data.draw(damaged_json(json.loads(lines[i]))))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path.write_bytes(data.draw(damaged_bytes(PAIRS.encode())))
    _loads_or_names_the_file(read_pairs_jsonl, path)


# ------------------------------------------------------------------------- study TOML

STUDY = """
[study]
name = "t"
strategies = ["mono", "hybrid"]
alphas = [0.5]
seeds = [0, 1]

[[models]]
name = "offline:multilingual-e5-small@L1"

[train]
train = ["mlqa-r"]
max_steps = 2
batch_size = 8

[[eval]]
dataset = "xquad-r"
articles = 2
"""


def _toml(value: Any) -> str:
    lines = []
    tables = {k: v for k, v in value.items() if isinstance(v, dict)}
    arrays = {
        k: v for k, v in value.items() if isinstance(v, list) and v and isinstance(v[0], dict)
    }
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items() if v is not None]
    for name, rows in arrays.items():
        for row in rows:
            lines.append(f"[[{name}]]")
            if isinstance(row, dict):
                lines += [f"{k} = {json.dumps(v)}" for k, v in row.items() if v is not None]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(data=st.data())
def test_study_config_damage(tmp_path, data):
    from langmix.study.config import load_study_config

    path = tmp_path / "study.toml"
    if data.draw(st.booleans()):
        document = data.draw(damaged_json(tomllib.loads(STUDY)))
        assume(isinstance(document, dict))
        path.write_text(_toml(document), encoding="utf-8")
    else:
        path.write_bytes(data.draw(damaged_bytes(STUDY.encode())))
    _loads_or_names_the_file(load_study_config, path)
