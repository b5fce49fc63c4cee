"""Write ``bench/README.md`` from ``bench/results/*.json`` (no figure is typed by hand).

Run: ``python bench/summarize.py`` (``make bench`` runs it last).
"""

from __future__ import annotations

import json
from typing import Any

from _common import REPO, RESULTS

README = REPO / "bench" / "README.md"

INTRO = """# Benchmarks

`make bench` runs every benchmark below on this machine, one after the other, writes
`bench/results/{name}.json` (figures, settings, machine and package versions) and rewrites
this page from those files with `bench/summarize.py`. One benchmark alone:
`cd bench && ../.venv/bin/python bench_metrics.py` (each script's docstring says what it
measures and how). Nothing here needs a GPU; with one, torch uses it where the scripts
allow and the machine line says so.
"""


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _goal(met: bool) -> str:
    return "met" if met else "**not met**"


def _machine(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    gpu = env["gpu"] or "no GPU"
    return (
        f"*{doc['finished_at']} · {env['cpu']}, {env['cores']} cores, "
        f"{env['memory_gib']} GiB, {gpu} · {versions}*"
    )


def metrics_section(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    return [
        "## 1. LAReQA metrics from fixed embeddings (full XQuAD-R)",
        "",
        f"{f['queries']:,} questions × {f['candidates']:,} candidates, {f['language_pairs']} "
        "ordered language pairs (11 mono + 110 cross) + the pooled multilingual ranking + "
        f"rank distance, from `{doc['settings']['model']}` embeddings. pytrec_eval and ranx get "
        f"run dicts for a stratified subset of {f['subset_queries']} questions with their full "
        f"pools ({f['subset_run_entries']:,} run entries) and their time is scaled linearly "
        "to all questions (their cost is linear in run entries; the full run, 341M entries, "
        "does not fit in memory as Python dicts).",
        "",
        "| | seconds | vs floor | langmix speed-up |",
        "|---|---:|---:|---:|",
        f"| floor: `Q @ C.T` (float32, torch, preallocated) | {f['floor_matmul_s']:.2f} | 1.00× | |",
        f"| **langmix** `evaluate_lareqa` (all metrics) | **{f['langmix_s']:.2f}** | "
        f"{f['langmix_over_floor']:.2f}× | |",
        f"| pytrec_eval (+ building its run dicts), extrapolated | "
        f"{f['pytrec_eval_full_extrapolated_s']:.0f} | | {f['speedup_vs_pytrec_eval']:.0f}× |",
        f"| ranx (+ building its run dicts), extrapolated | {f['ranx_full_extrapolated_s']:.0f} "
        f"| | {f['speedup_vs_ranx']:.0f}× |",
        "",
        f"Measured on the subset: langmix {f['langmix_subset_s']:.3f} s, building run dicts "
        f"{f['run_dicts_build_subset_s']:.2f} s, pytrec_eval {f['pytrec_eval_subset_s']:.2f} s, "
        f"ranx {f['ranx_subset_s']:.2f} s (after {f['ranx_first_use_compile_s']:.0f} s of "
        "one-time numba compilation, not counted). Without the dict building, langmix is "
        f"{f['speedup_vs_pytrec_eval_without_run_building']:.0f}× faster than pytrec_eval and "
        f"{f['speedup_vs_ranx_without_run_building']:.0f}× faster than ranx.",
        "",
        "Per-query values (mono and every cross pool: AP and R@1; pooled: AP and R@10) agree "
        f"with pytrec_eval to {f['max_abs_difference_pytrec_eval']:.1e} on every question, and "
        f"with ranx to {f['max_abs_difference_ranx']:.1e} on every question without an exact "
        f"score tie; on the {f['queries_with_exact_score_ties']} questions whose relevant "
        "candidate ties exactly with another, ranx differs by up to "
        f"{f['max_abs_difference_ranx_on_tied_queries']:.1e} because it orders ties "
        "arbitrarily (numpy's unstable argsort), while langmix and trec_eval use a fixed rule. "
        "Rank distance equals a full argsort's. "
        f"Goals: ≤ 1.5× the floor — {_goal(f['langmix_over_floor'] <= 1.5)} "
        f"({f['langmix_over_floor']:.2f}×); ≥ 20× pytrec_eval — "
        f"{_goal(f['speedup_vs_pytrec_eval'] >= 20)}.",
        "",
        _machine(doc),
    ]


def encode_section(doc: dict[str, Any]) -> list[str]:
    f, s = doc["figures"], doc["settings"]
    return [
        "## 2. Encoding throughput",
        "",
        f"`{s['model']}` (12 layers), {f['texts']:,} XQuAD-R texts (questions and candidate "
        f"sentences with their paragraph, first {s['articles']} article(s), 11 languages), "
        f"batch {s['batch_size']}, queries {s['query_max_length']} / passages "
        f"{s['passage_max_length']} tokens, best of {len(f['all_timings_s']['langmix_cold'])}.",
        "",
        "| | seconds | texts/s | vs sentence-transformers |",
        "|---|---:|---:|---:|",
        f"| `SentenceTransformer.encode` | {f['sentence_transformers_s']:.1f} | "
        f"{f['sentence_transformers_texts_per_s']:.1f} | 1.00× |",
        f"| langmix `encode`, empty cache | {f['langmix_cold_s']:.1f} | "
        f"{f['langmix_cold_texts_per_s']:.1f} | {f['langmix_cold_over_st']:.2f}× |",
        f"| langmix `encode`, cached (any later evaluation of the model) | "
        f"{f['langmix_warm_s']:.3f} | {f['langmix_warm_texts_per_s']:,.0f} | "
        f"{f['sentence_transformers_s'] / f['langmix_warm_s']:,.0f}× |",
        "",
        f"Embeddings agree to {f['max_abs_difference']:.1e}. Evaluating the model twice on the "
        f"set sent {f['texts_sent_to_model_over_two_evaluations']:,} texts to the model: its "
        f"{f['distinct_texts']:,} distinct texts, once. Goal (≥ sentence-transformers): "
        f"{_goal(f['langmix_cold_over_st'] >= 0.98)} — langmix calls `SentenceTransformer.encode` "
        "for the texts it has not seen, so cold throughput can only match it (differences "
        "under 2% are run-to-run noise here); the gain is that nothing is encoded twice.",
        "",
        _machine(doc),
    ]


def train_section(doc: dict[str, Any]) -> list[str]:
    f, s = doc["figures"], doc["settings"]
    st, lm, control = f["sentence-transformers"], f["langmix-hybrid"], f["langmix-random"]
    return [
        "## 3. Training throughput",
        "",
        f"`{s['model']}`, {s['data']}, batch {s['batch_size']}, {s['max_length']} tokens, "
        f"{s['trainable']}; steady state over steps {s['warmup_steps_excluded'] + 1}–"
        f"{s['steps']}, wall clock including sampling and tokenization.",
        "",
        "| | s/step | examples/s | peak RSS (MiB) |",
        "|---|---:|---:|---:|",
        f"| sentence-transformers, MultipleNegativesRankingLoss | {st['seconds_per_step']:.2f} | "
        f"{st['examples_per_s']:.2f} | {st['peak_rss_mib']:,.0f} |",
        f"| `langmix train --sampling hybrid` | {lm['seconds_per_step']:.2f} | "
        f"{lm['examples_per_s']:.2f} | {lm['peak_rss_mib']:,.0f} |",
        f"| `langmix train --sampling random` (same batches as the plain run draws) | "
        f"{control['seconds_per_step']:.2f} | {control['examples_per_s']:.2f} | "
        f"{control['peak_rss_mib']:,.0f} |",
        "",
        f"langmix / sentence-transformers: throughput {f['langmix_over_st_throughput']:.3f}× "
        f"with hybrid batches, {f['langmix_random_over_st_throughput']:.3f}× with random ones, "
        f"peak memory {f['langmix_over_st_peak_memory']:.3f}×. Drawing a hybrid batch costs "
        f"{f['sampler_ms_per_batch']:.3f} ms ({100 * f['sampler_share_of_step']:.4f}% of a step). "
        "Goal (≥ sentence-transformers, the sampling costing nothing measurable): on the same "
        f"kind of batches {_goal(f['langmix_random_over_st_throughput'] >= 0.98)}; with hybrid "
        f"batches {_goal(f['langmix_over_st_throughput'] >= 0.98)}. A ratio within 2% of 1 counts "
        "as equal; whole runs of this benchmark vary more than that here (one earlier run gave "
        "0.95× for hybrid), so read a single ratio within ±6%. Hybrid batches draw languages uniformly and pair them "
        "across languages, so they hold a different mix of scripts, hence of tokens per batch, "
        "than pooled random pairs: a difference between the hybrid and random rows is the data's, "
        "not the sampler's, whose own cost is the figure above.",
        "",
        _machine(doc),
    ]


def growth_section(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    lines = [
        "## 4. Growth",
        "",
        f"LAReQA evaluation against pool size ({f['lareqa_pool_growth'][0]['queries']:,} "
        "synthetic queries, 11 languages, 384-d):",
        "",
        "| candidates | floor `Q @ C.T` (s) | langmix (s) | vs floor | embeddings (MiB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in f["lareqa_pool_growth"]:
        lines.append(
            f"| {row['candidates']:,} | {row['floor_matmul_s']:.3f} | {row['langmix_s']:.3f} | "
            f"{row['langmix_over_floor']:.2f}× | {row['embedding_mib']:,.1f} |"
        )
    c = f["corpus_search"]
    lines += [
        "",
        f"Top-{c['top_k']} search, {c['queries']:,} queries over {c['passages']:,} synthetic "
        f"passages ({c['dim']}-d, clustered):",
        "",
        "| index | build (s) | search (s) | queries/s | index (MiB) | recall of exact top-100 "
        "| of exact top-10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| flat (exact; langmix `search`) | — | {c['flat']['build_and_search_s']:.1f} | "
        f"{c['flat']['queries_per_s']:,.0f} | {c['flat']['index_mib']:,.0f} | 1.000 | 1.000 |",
    ]
    for name, label in (("ivf_flat", "IVF-Flat"), ("ivf_pq48", "IVF-PQ (48 B codes)")):
        r = c[name]
        lines.append(
            f"| {label}, nlist {r['nlist']}, nprobe {r['nprobe']} | {r['build_s']:.1f} | "
            f"{r['search_s']:.2f} | {r['queries_per_s']:,.0f} | {r['index_mib']:,.0f} | "
            f"{r['recall_of_exact_top_k']:.3f} | {r['recall_of_exact_top_10']:.3f} |"
        )
    lines += [
        "",
        "Memory (float32, d dims): LAReQA evaluation `4·d·(n_q + n_c)` bytes of embeddings + "
        "a 64 MiB score chunk + about `8·n_rel·(3 + n_lang)` bytes per query; flat index "
        "`4·d·N`; IVF-Flat `(4·d + 8)·N + 4·d·nlist`; IVF-PQ with m one-byte codes "
        "`(m + 8)·N + 4·d·nlist`. Flat search time is linear in N·n_q·d: multiply the flat row "
        "by N/1M for a MIRACL language of N passages.",
        "",
        _machine(doc),
    ]
    return lines


def demo_section(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    labels = {
        "setup": "setup (interpreter, imports, data)",
        "training": "training (set-up, steps, validation, saving)",
        "model_loading": "loading models for evaluation",
        "encoding": "encoding",
        "metrics": "metrics",
        "writing": "writing metrics and per-query files",
        "report": "report and plots",
        "other": "other (cell bookkeeping)",
    }
    # Columns: the old code (baseline), the new code on the baseline's config, and now. Each
    # column names its machine: 2-core machines here differ by up to 2x in speed.
    columns = [("before", _load("demo-baseline")), ("same config", _load("demo-16-articles"))]
    columns = [(name, d) for name, d in columns if d is not None] + [("now", doc)]
    lines = [
        "## 5. The demo study (`make demo`)",
        "",
        f"`{doc['settings']['config']}`: {f['cells']} cells, {f['evaluation_rows']} "
        f"evaluation rows, fresh cache; wall {f['wall_s'] / 60:.1f} min (installation not "
        "included).",
        "",
    ]
    for name, d in columns[:-1]:
        lines.append(
            f"- *{name}*: {d['settings']['note']}; {d['environment']['cpu']}; wall "
            f"{d['figures']['wall_s'] / 60:.1f} min."
        )
    lines.append(
        f"- *now*: this commit's `{doc['settings']['config']}` (its description says what it "
        f"runs and what it cuts); {doc['environment']['cpu']}."
    )
    lines += [
        "",
        "| part | " + " | ".join(f"{name} (s) | share" for name, _ in columns) + " |",
        "|---|" + "---:|---:|" * len(columns),
    ]
    for key, label in labels.items():
        cells = " | ".join(
            f"{d['figures']['parts_s'][key]:.1f} | {100 * d['figures']['parts_share'][key]:.1f}%"
            for _, d in columns
        )
        lines.append(f"| {label} | {cells} |")
    walls = " | ".join(f"**{d['figures']['wall_s']:.1f}** | " for _, d in columns)
    steps = ", ".join(f"{name} {d['figures']['training_steps_s']:.0f} s" for name, d in columns)
    lines += [
        f"| **wall** | {walls}",
        "",
        f"Optimizer steps within training: {steps}.",
        "",
        _machine(doc),
    ]
    return lines


def corpus_section(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    one, two = f["static_1_processes"], f["static_2_processes"]
    e5 = f["e5_small_12_layers"]
    lines = [
        "## 6. A 200k-passage corpus: encode-corpus, index, search (`make bench-corpus`)",
        "",
        f"{f['passages']:,} synthetic passages ({f['corpus_mib']:.0f} MiB of JSONL, "
        f"{f['shards']} shards), 384-d.",
        "",
        "| step | seconds | passages/s |",
        "|---|---:|---:|",
        f"| encode-corpus, static-embedding model, 1 process | {one['seconds']:.1f} | "
        f"{one['passages_per_s']:,.0f} |",
        f"| encode-corpus, static-embedding model, 2 processes (torchrun) | {two['seconds']:.1f} | "
        f"{two['passages_per_s']:,.0f} |",
        f"| encode-corpus, multilingual-e5-small (12 layers, ≤ {e5['max_length']} tokens), "
        f"{e5['passages']:,}-passage sample | {e5['seconds']:.1f} | {e5['passages_per_s']:.1f} |",
        "",
        "| index | factory | build (s) | size (MiB) | 1,000 queries, top 100 (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in ("flat", "ivfpq", "hnsw"):
        r = f[kind]
        lines.append(
            f"| {kind} | `{r['factory']}` | {r['build_s']:.1f} | {r['index_mib']:,.1f} | "
            f"{r['search_s']:.2f} |"
        )
    lines += ["", _machine(doc)]
    return lines


def main() -> None:
    sections = [INTRO]
    for name, build in (
        ("metrics", metrics_section),
        ("encode", encode_section),
        ("train", train_section),
        ("growth", growth_section),
        ("demo", demo_section),
        ("corpus", corpus_section),
    ):
        doc = _load(name)
        if doc is None:
            sections.append(f"## {name}\n\nNot run yet (`bench/results/{name}.json` is missing).\n")
        else:
            sections.append("\n".join(build(doc)) + "\n")
    README.write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
