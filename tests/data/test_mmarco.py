"""mMARCO: alignment across languages, seeded subsets, hard negatives, errors, and sources.

Every test runs on a tiny fake copy laid out like the hub repository; the download function
is replaced so that no test can reach the network.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest

from langmix.data import MMARCO_LANGUAGES, DataError, DataUnavailableError, load_mmarco, mmarco

LANGS = ("en", "de", "ja")
QIDS = (101, 102, 103, 104, 105, 106)
PIDS = range(20)
# (query id, positive id, negative id) in file order. 101 has two positives (0 first, then
# 1); 102 repeats negative 11; 106 has a single negative.
TRIPLES = [
    (101, 0, 10),
    (102, 2, 11),
    (101, 1, 12),
    (103, 3, 13),
    (102, 2, 11),
    (104, 4, 14),
    (105, 5, 15),
    (101, 0, 16),
    (102, 2, 17),
    (106, 6, 18),
    (103, 3, 19),
    (104, 4, 10),
    (105, 5, 11),
    (103, 3, 12),
]


def query_text(lang: str, qid: int) -> str:
    return f"{lang} query {qid}"


def passage_text(lang: str, pid: int) -> str:
    return f"{lang} passage {pid}"


def write(root: Path, relative: str, lines: list[str]) -> Path:
    path = root / "mmarco" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def make_copy(root: Path, languages: tuple[str, ...] = LANGS) -> Path:
    """Write a fake mMARCO under ``root/mmarco`` and return ``root``."""
    write(root, mmarco.TRIPLES_FILE, [f"{q}\t{p}\t{n}" for q, p, n in TRIPLES])
    for lang in languages:
        # 107 has no triples: like most of MS MARCO's 808k training queries, it is unjudged.
        write(
            root, mmarco.queries_file(lang), [f"{q}\t{query_text(lang, q)}" for q in (*QIDS, 107)]
        )
        write(root, mmarco.collection_file(lang), [f"{p}\t{passage_text(lang, p)}" for p in PIDS])
    return root


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache, and a hub download that fails the test if anything calls it."""
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> str:
        raise AssertionError(f"hf_hub_download called: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    return make_copy(tmp_path / "data")


def test_languages_match_the_hub_layout():
    assert len(MMARCO_LANGUAGES) == 14
    assert MMARCO_LANGUAGES["zh"] == "chinese" and MMARCO_LANGUAGES["nl"] == "dutch"
    assert mmarco.collection_file("de") == "data/google/collections/german_collection.tsv"
    assert mmarco.queries_file("vi") == "data/google/queries/train/vietnamese_queries.train.tsv"


def test_pairs_are_aligned_across_languages(copy_dir: Path):
    pairs = load_mmarco(["ja", "en", "de"], data_dir=copy_dir)
    assert pairs.name == "mmarco"
    assert pairs.languages == ("en", "de", "ja")  # canonical order, not the request's
    assert len(pairs) == len(QIDS) * 3
    assert set(pairs.by_id) == {f"mmarco:{q}" for q in QIDS}  # 107 is unjudged
    first_positive = {101: 0, 102: 2, 103: 3, 104: 4, 105: 5, 106: 6}
    for parallel_id, by_lang in pairs.by_id.items():
        assert set(by_lang) == set(LANGS)
        qid = int(parallel_id.split(":")[1])
        for lang, index in by_lang.items():
            pair = pairs.pairs[index]
            assert pair.parallel_id == parallel_id and pair.group == parallel_id
            assert pair.language == lang
            assert pair.query == query_text(lang, qid)
            assert pair.positive == passage_text(lang, first_positive[qid])
            assert pair.negatives == ()


def test_language_string_and_unknown_language(copy_dir: Path):
    assert load_mmarco("de,en", data_dir=copy_dir).languages == ("en", "de")
    with pytest.raises(ValueError, match=r"unknown language\(s\) xx.*available: en, zh"):
        load_mmarco(["en", "xx"], data_dir=copy_dir)


def test_max_queries_is_a_seeded_subset_shared_by_all_languages(copy_dir: Path):
    pairs = load_mmarco(LANGS, max_queries=3, seed=7, data_dir=copy_dir)
    assert len(pairs.by_id) == 3
    assert all(set(by_lang) == set(LANGS) for by_lang in pairs.by_id.values())
    again = load_mmarco(LANGS, max_queries=3, seed=7, data_dir=copy_dir)
    assert again.pairs == pairs.pairs
    # The subset depends on the seed, not on which languages are loaded.
    assert set(load_mmarco(["de"], max_queries=3, seed=7, data_dir=copy_dir).by_id) == set(
        pairs.by_id
    )
    subsets = {
        frozenset(load_mmarco(["en"], max_queries=3, seed=s, data_dir=copy_dir).by_id)
        for s in range(8)
    }
    assert len(subsets) > 1
    assert len(load_mmarco(["en"], max_queries=100, data_dir=copy_dir)) == len(QIDS)
    with pytest.raises(ValueError, match="max_queries"):
        load_mmarco(["en"], max_queries=0, data_dir=copy_dir)


def test_hard_negatives_come_from_the_triples_in_each_language(copy_dir: Path):
    pairs = load_mmarco(LANGS, hard_negatives=2, data_dir=copy_dir)
    expected = {101: (10, 12), 102: (11, 17), 103: (13, 19), 104: (14, 10), 105: (15, 11)}
    expected[106] = (18,)  # only one negative in the file
    for pair in pairs.pairs:
        qid = int(pair.parallel_id.split(":")[1])
        assert pair.negatives == tuple(passage_text(pair.language, n) for n in expected[qid])
    three = load_mmarco(["en"], hard_negatives=3, data_dir=copy_dir)
    assert three.pairs[0].negatives == tuple(passage_text("en", n) for n in (10, 12, 16))
    with pytest.raises(ValueError, match="hard_negatives"):
        load_mmarco(["en"], hard_negatives=-1, data_dir=copy_dir)


@pytest.mark.parametrize(
    ("relative", "number", "bad_line", "message"),
    [
        (
            mmarco.TRIPLES_FILE,
            2,
            "102\t2",
            r"triples\.train\.ids\.small\.tsv, line 2: expected 3 tab-separated columns, found 2",
        ),
        (mmarco.TRIPLES_FILE, 4, "\t3\t13", r"triples\.train\.ids\.small\.tsv, line 4: empty id"),
        (
            mmarco.queries_file("de"),
            2,
            "102\tWas?\tnoch was",
            r"german_queries\.train\.tsv, line 2: expected 2 tab-separated columns, found 3",
        ),
        (
            mmarco.collection_file("ja"),
            12,  # passage 11: columns are checked on every line, needed or not
            "11",
            r"japanese_collection\.tsv, line 12: expected 2 tab-separated columns, found 1",
        ),
        (
            mmarco.collection_file("de"),
            3,
            "2\t   ",
            r"german_collection\.tsv, line 3: empty text for passage id 2",
        ),
    ],
)
def test_malformed_lines_name_file_and_line(
    copy_dir: Path, relative: str, number: int, bad_line: str, message: str
):
    lines = (copy_dir / "mmarco" / relative).read_text(encoding="utf-8").splitlines()
    lines[number - 1] = bad_line
    write(copy_dir, relative, lines)
    with pytest.raises(DataError, match=message):
        load_mmarco(LANGS, data_dir=copy_dir)


def test_empty_text_of_an_unused_passage_is_not_an_error(copy_dir: Path):
    lines = [f"{p}\t{passage_text('en', p)}" if p != 9 else "9\t" for p in PIDS]
    write(copy_dir, mmarco.collection_file("en"), lines)
    assert len(load_mmarco(["en"], hard_negatives=5, data_dir=copy_dir)) == len(QIDS)


def test_missing_passage_names_the_collection_and_the_triples_line(copy_dir: Path):
    # Passage 4 (positive of 104, first needed on line 6 of the triples) lacks in German only.
    lines = [f"{p}\t{passage_text('de', p)}" for p in PIDS if p != 4]
    write(copy_dir, mmarco.collection_file("de"), lines)
    assert load_mmarco(["en", "ja"], data_dir=copy_dir)  # other languages are fine
    with pytest.raises(DataError) as info:
        load_mmarco(LANGS, data_dir=copy_dir)
    message = str(info.value)
    assert "german_collection.tsv" in message
    assert "no passage with id 4" in message
    assert "triples.train.ids.small.tsv, line 6" in message


def test_missing_query_names_the_language_file_that_lacks_it(copy_dir: Path):
    lines = [f"{q}\t{query_text('ja', q)}" for q in QIDS if q != 105]
    path = write(copy_dir, mmarco.queries_file("ja"), lines)
    with pytest.raises(DataError) as info:
        load_mmarco(LANGS, data_dir=copy_dir)
    message = str(info.value)
    assert message.startswith(f"{path}: no query with id 105")
    assert "triples.train.ids.small.tsv, line 7" in message


def test_not_utf8_names_file_and_line(copy_dir: Path):
    path = copy_dir / "mmarco" / mmarco.collection_file("en")
    path.write_bytes(b"0\tok\n1\tok\n2\t\xff\xfe bad\n")
    with pytest.raises(
        DataError, match=r"english_collection\.tsv, line 3, offset 2 in that line: not UTF-8"
    ):
        load_mmarco(["en"], data_dir=copy_dir)


def test_env_var_and_cache_are_local_copies(
    copy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LANGMIX_DATA_DIR", str(copy_dir))
    assert len(load_mmarco(["en"])) == len(QIDS)
    monkeypatch.delenv("LANGMIX_DATA_DIR")
    make_copy(tmp_path / "cache" / "data", ("de",))
    assert load_mmarco(["de"]).languages == ("de",)


def test_no_local_copy_and_no_download_is_unavailable(tmp_path: Path):
    with pytest.raises(DataUnavailableError) as info:
        load_mmarco(["en", "de"], allow_download=False)
    message = str(info.value)
    assert "mmarco/data/triples.train.ids.small.tsv is not available locally" in message
    assert "--data-dir" in message and "LANGMIX_DATA_DIR" in message
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_mmarco(["en"], data_dir=tmp_path / "missing")


def test_failed_download_says_how_to_use_a_local_copy(monkeypatch: pytest.MonkeyPatch):
    def offline(**kwargs: object) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DataUnavailableError) as info:
        load_mmarco(["de"])
    message = str(info.value)
    assert "unicamp-dl/mmarco" in message and "network is unreachable" in message
    assert "--data-dir DIR" in message and "DIR/mmarco/data/triples.train.ids.small.tsv" in message


def test_download_fetches_only_the_needed_files_from_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The real download path, with ``hf_hub_download`` served from a fake repository."""
    repo = make_copy(tmp_path / "repo") / "mmarco"
    calls: list[dict[str, object]] = []

    def fake_download(**kwargs: object) -> str:
        calls.append(kwargs)
        return str(repo / str(kwargs["filename"]))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    pairs = load_mmarco(["de", "en"], max_queries=2)
    assert pairs.languages == ("en", "de") and len(pairs) == 4
    assert {c["filename"] for c in calls} == {
        "data/triples.train.ids.small.tsv",
        "data/google/queries/train/english_queries.train.tsv",
        "data/google/queries/train/german_queries.train.tsv",
        "data/google/collections/english_collection.tsv",
        "data/google/collections/german_collection.tsv",
    }
    for call in calls:
        assert call["repo_id"] == "unicamp-dl/mmarco" and call["repo_type"] == "dataset"
        assert call["cache_dir"] == tmp_path / "cache" / "hub"
