"""Generate (and optionally execute) the project's notebooks from plain Python, so reviews read code.

    .venv/bin/python notebooks/build_notebooks.py                 # write and run domain_shares.ipynb
    .venv/bin/python notebooks/build_notebooks.py --no-execute    # write it without outputs

The notebook is committed with its outputs, so running is the default (`make notebooks` builds
runs/demo first). It runs headless in this interpreter's `python3` kernel, with the working
directory set to notebooks/ so the default database path `../runs/demo/analysis.duckdb`
resolves the same way it does for someone opening the notebook in Jupyter.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parent
DOMAIN_SHARES = NOTEBOOKS_DIR / "domain_shares.ipynb"
DEFAULT_DATABASE = "../runs/demo/analysis.duckdb"
EXECUTE_TIMEOUT_SECONDS = 600

Notebook = Any
"""An `nbformat.NotebookNode` (or a cell of one); nbformat ships no type hints."""


def code(source: str) -> Notebook:
    return new_code_cell(textwrap.dedent(source).strip())  # type: ignore[no-untyped-call]


def markdown(source: str) -> Notebook:
    return new_markdown_cell(textwrap.dedent(source).strip())  # type: ignore[no-untyped-call]


def domain_shares_notebook(database: str = DEFAULT_DATABASE) -> Notebook:
    """Plots of one run's `analysis.duckdb`; every query is a plain SELECT on documents/domain_shares."""
    cells = [
        markdown(
            """
            # Domain shares of a web corpus

            Reads the `analysis.duckdb` written by `analyzer run ... --out OUT` and plots how much
            finance, law, code, medical and other text the corpus holds, before and after
            near-duplicate removal. Set `DATABASE` below to another run's database to re-use it.
            Shares are of tokens, in the tokenizer recorded in the `runs` table.
            """
        ),
        code(
            f"""
            from pathlib import Path

            DATABASE = Path("{database}")
            TOP_HOSTS = 8  # hosts listed per domain
            LENGTH_SAMPLE_ROWS = 200_000  # documents sampled for the length plot (bounds memory)
            """
        ),
        code(
            """
            %matplotlib inline
            import duckdb
            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd

            connection = duckdb.connect(str(DATABASE), read_only=True)


            def query(sql: str) -> pd.DataFrame:
                return connection.sql(sql).df()


            # Domains in the store's own order; one fixed colour each so every plot matches.
            DOMAINS = list(query("SELECT domain FROM domain_shares")["domain"])
            COLOURS = dict(zip(DOMAINS, plt.get_cmap("tab10").colors, strict=False))
            plt.rcParams.update({"figure.dpi": 90, "figure.figsize": (9, 4), "axes.grid": True})
            """
        ),
        markdown("## The run"),
        code(
            """
            query(
                "SELECT started_at, model_name, model_version, tokenizer, shards, failed_shards, "
                "documents, skipped FROM runs"
            )
            """
        ),
        markdown(
            """
            ## Token share per domain, all documents vs deduplicated

            `dedup` keeps one representative per near-duplicate cluster (MinHash LSH plus exact hash).
            A domain whose share moves between the two bars is over- or under-represented among the
            duplicates. Where the store has intervals (`*_lo`, `*_hi`), they are drawn as error bars;
            such stores hold the corrected estimate in `token_share` and plain classify-and-count in
            `token_share_raw`. Every plot further down is plain classify-and-count over `documents`.
            """
        ),
        code(
            """
            # SELECT * so the cell works on stores with and without the interval columns.
            shares = query("SELECT * FROM domain_shares")
            positions = np.arange(len(shares))
            fig, ax = plt.subplots()
            bars = ((-0.2, "token_share", "all documents"), (0.2, "dedup_token_share", "dedup"))
            for offset, column, label in bars:
                values = shares[column] * 100
                errors = None
                if {f"{column}_lo", f"{column}_hi"} <= set(shares.columns):
                    low, high = shares[f"{column}_lo"] * 100, shares[f"{column}_hi"] * 100
                    errors = np.vstack([values - low, high - values])
                ax.bar(
                    positions + offset,
                    values,
                    width=0.4,
                    yerr=errors,
                    capsize=3,
                    label=label,
                    color=[COLOURS[d] for d in shares["domain"]],
                    alpha=0.55 if column == "token_share" else 1.0,
                )
                tops = values if errors is None else values + errors[1]
                for x, value, top in zip(positions + offset, values, tops, strict=True):
                    ax.annotate(f"{value:.1f}%", (x, top), ha="center", va="bottom", fontsize=7)
            ax.set_xticks(positions, shares["domain"])
            ax.set_ylabel("share of tokens (%)")
            ax.set_title("Token share per domain (light: all documents, dark: deduplicated)")
            plt.show()
            share_columns = [c for c in shares.columns if "share" in c]
            shares[["domain", "docs", "tokens", "dedup_docs", "dedup_tokens", *share_columns]].style.format(
                {c: "{:.2%}" for c in share_columns} | {"tokens": "{:,}", "dedup_tokens": "{:,}"}
            )
            """
        ),
        markdown(
            """
            ## Token share per domain over crawl dumps

            From `domain_shares_by_dump`: the run's estimator on each dump's documents, with the
            95% interval for those documents (shaded). Documents without a dump (Dolma's) are left
            out here. Dump names sort in crawl order.
            """
        ),
        code(
            '''
            per_dump = query(
                """
                SELECT dump, domain, token_share, token_share_lo, token_share_hi
                FROM domain_shares_by_dump
                WHERE dump <> '(none)'
                ORDER BY dump
                """
            )
            if per_dump.empty:
                print("no document carries a dump name")
            else:
                fig, ax = plt.subplots()
                for domain in [d for d in DOMAINS if d in set(per_dump["domain"])]:
                    rows = per_dump[per_dump["domain"] == domain]
                    share = rows["token_share"] * 100
                    ax.plot(rows["dump"], share, marker="o", label=domain, color=COLOURS[domain])
                    if rows["token_share_lo"].notna().all():
                        low, high = rows["token_share_lo"] * 100, rows["token_share_hi"] * 100
                        ax.fill_between(rows["dump"], low, high, color=COLOURS[domain], alpha=0.15)
                ax.set_ylabel("share of the dump's tokens (%)")
                ax.set_title("Token share per domain by crawl dump, with 95% intervals")
                ax.tick_params(axis="x", rotation=45)
                ax.legend(ncol=5, fontsize=8)
                plt.show()
            '''
        ),
        markdown(
            """
            ## What a 20 % sample sees of the dumps

            `make notebooks` also runs `analyzer run --sample-rate 0.2` on the same shards twice
            (`runs/demo-sample`: the default, which classifies every document and calibrates the
            sample to that census; `runs/demo-sample-plain`: `--no-classify-all`). Each panel is
            one domain's share per dump, with 95% intervals, for the run above and both samples.
            """
        ),
        code(
            '''
            SAMPLED_RUNS = {
                "every document": DATABASE,
                "20 % + census": DATABASE.parent.parent / "demo-sample" / "analysis.duckdb",
                "20 %, --no-classify-all": DATABASE.parent.parent / "demo-sample-plain" / "analysis.duckdb",
            }
            DUMP_SQL = """
                SELECT dump, domain, token_share, token_share_lo, token_share_hi
                FROM domain_shares_by_dump WHERE dump <> '(none)' ORDER BY dump
            """
            missing = [str(path) for path in SAMPLED_RUNS.values() if not path.is_file()]
            if missing:
                print("not built (make notebooks builds them):", ", ".join(missing))
            else:
                by_run = {}
                for name, path in SAMPLED_RUNS.items():
                    with duckdb.connect(str(path), read_only=True) as run:
                        by_run[name] = run.sql(DUMP_SQL).df()
                fig, axes = plt.subplots(1, len(DOMAINS), figsize=(15, 3.6), sharex=True)
                for ax, domain in zip(axes, DOMAINS, strict=True):
                    for (name, frame), offset in zip(by_run.items(), (-0.2, 0.0, 0.2), strict=True):
                        rows = frame[frame["domain"] == domain]
                        x = np.arange(len(rows)) + offset
                        share = rows["token_share"] * 100
                        errors = np.vstack(
                            [share - rows["token_share_lo"] * 100, rows["token_share_hi"] * 100 - share]
                        )
                        ax.errorbar(x, share, yerr=errors, fmt="o", markersize=3, capsize=2, label=name)
                    ax.set_title(domain)
                    ax.set_xticks(np.arange(len(rows)), [d.removeprefix("CC-MAIN-") for d in rows["dump"]])
                    ax.tick_params(axis="x", rotation=90, labelsize=7)
                axes[0].set_ylabel("share of the dump's tokens (%)")
                axes[0].legend(fontsize=7)
                fig.suptitle("Per-dump token shares: every document, 20 % with and without the census")
                plt.tight_layout()
                plt.show()
            '''
        ),
        markdown(
            """
            ## How confidently the model read this input

            From `model_confidence`: the share of tagged documents whose top calibrated probability
            is below 0.9, per predicted domain, next to the same share on the model's dev set. On
            sources like its training data's the two are close; on sources it never saw about twice
            as many documents are unsure, and its errors are larger. The second plot is how far each
            dump and source reads from familiar (0) to unfamiliar (1), `unfamiliar_fraction`: the
            intervals carry that much of the model's error on sources it never saw (README, "On
            sources the classifier never saw").
            """
        ),
        code(
            """
            tables = set(query("SELECT table_name FROM duckdb_tables()")["table_name"])
            if "model_confidence" not in tables:
                print("this store predates the model_confidence table")
            else:
                confidence = query("SELECT * FROM model_confidence")
                positions = np.arange(len(confidence))
                fig, ax = plt.subplots()
                unsure = confidence["low_confidence_doc_share"] * 100
                ax.bar(positions - 0.2, unsure, width=0.4, label="this input")
                if confidence["dev_low_confidence_doc_share"].notna().any():
                    dev = confidence["dev_low_confidence_doc_share"] * 100
                    ax.bar(positions + 0.2, dev, width=0.4, label="model's dev set", color="tab:gray")
                ax.set_xticks(positions, confidence["predicted"])
                ax.set_ylabel("documents with top probability < 0.9 (%)")
                ax.set_title("Documents the model is unsure of, by predicted domain")
                ax.legend()
                plt.show()
            groups = query("SELECT * FROM share_estimates_by_group WHERE domain = 'finance'")
            if "unfamiliar_fraction" not in groups.columns or groups["unfamiliar_fraction"].isna().all():
                print("no unfamiliar_fraction: the model ships no source-shift rows, or an older store")
            else:
                groups = groups.sort_values(["grouping", "group_value"])
                pairs = zip(groups["grouping"], groups["group_value"], strict=True)
                labels = [f"{grouping}: {value.removeprefix('CC-MAIN-')}" for grouping, value in pairs]
                fig, ax = plt.subplots()
                ax.bar(labels, groups["unfamiliar_fraction"], color="tab:purple")
                whole = query("SELECT any_value(unfamiliar_fraction) AS f FROM domain_shares")["f"][0]
                ax.axhline(whole, color="black", linewidth=1, label=f"whole input: {whole:.2f}")
                ax.set_ylim(0, 1.05)
                ax.set_ylabel("unfamiliar_fraction")
                ax.set_title("How unfamiliar each dump and source reads to the model")
                ax.tick_params(axis="x", rotation=90, labelsize=7)
                ax.legend()
                plt.show()
            """
        ),
        markdown("## Domain mix per shard"),
        code(
            """
            shard_sql = "SELECT shard, domain, sum(n_tokens) AS tokens FROM documents GROUP BY shard, domain"
            per_shard = query(shard_sql)
            table = per_shard.pivot(index="shard", columns="domain", values="tokens").fillna(0).sort_index()
            table = table.reindex(columns=[d for d in DOMAINS if d in table.columns])
            share = table.div(table.sum(axis=1), axis=0) * 100
            fig, ax = plt.subplots(figsize=(9, 0.45 * len(share) + 1.5))
            left = np.zeros(len(share))
            for domain in share.columns:
                ax.barh(share.index, share[domain], left=left, label=domain, color=COLOURS[domain])
                left += share[domain].to_numpy()
            ax.invert_yaxis()
            ax.set_xlabel("share of the shard's tokens (%)")
            ax.set_title("Domain mix per shard")
            ax.legend(ncol=len(share.columns), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15))
            plt.show()
            """
        ),
        markdown(
            """
            ## Top hosts per domain

            By tokens among documents labelled with the domain; `share` is of the domain's tokens.
            A domain dominated by a few hosts is a domain whose share rests on little evidence.
            """
        ),
        code(
            '''
            top_hosts = query(
                f"""
                SELECT
                    domain,
                    host,
                    count(*) AS docs,
                    sum(n_tokens) AS tokens,
                    sum(n_tokens) / sum(sum(n_tokens)) OVER (PARTITION BY domain) AS share
                FROM documents
                WHERE host IS NOT NULL
                GROUP BY domain, host
                QUALIFY row_number() OVER (PARTITION BY domain ORDER BY tokens DESC, host) <= {TOP_HOSTS}
                ORDER BY domain, tokens DESC
                """
            )
            top_hosts["domain"] = pd.Categorical(top_hosts["domain"], DOMAINS, ordered=True)
            top_hosts.sort_values(["domain", "tokens"], ascending=[True, False]).set_index(
                ["domain", "host"]
            ).style.format({"share": "{:.1%}", "tokens": "{:,}"})
            '''
        ),
        markdown(
            """
            ## Document length per domain

            Tokens per document on a log scale, over a fixed random sample of documents so the plot
            costs the same on any corpus size.
            """
        ),
        code(
            '''
            lengths = query(
                f"""
                SELECT domain, n_tokens
                FROM documents
                WHERE n_tokens > 0
                USING SAMPLE reservoir({LENGTH_SAMPLE_ROWS} ROWS) REPEATABLE (0)
                """
            )
            present = [d for d in DOMAINS if (lengths["domain"] == d).any()]
            groups = [np.log10(lengths.loc[lengths["domain"] == d, "n_tokens"].to_numpy()) for d in present]
            fig, ax = plt.subplots()
            violins = ax.violinplot(groups, showmedians=True, showextrema=False)
            for body, domain in zip(violins["bodies"], present, strict=True):
                body.set_facecolor(COLOURS[domain])
                body.set_alpha(0.6)
            ax.boxplot(groups, widths=0.12, showfliers=False)
            ax.set_xticks(np.arange(1, len(present) + 1), present)
            low, high = min(g.min() for g in groups), max(g.max() for g in groups)
            ticks = np.arange(np.floor(low), np.ceil(high) + 1)
            ax.set_yticks(ticks, [f"{10**t:,.0f}" for t in ticks])
            ax.set_ylabel("tokens per document (log scale)")
            ax.set_title(f"Document length per domain ({len(lengths):,} documents)")
            plt.show()
            summary = lengths.groupby("domain")["n_tokens"].describe(percentiles=[0.1, 0.5, 0.9])
            summary.reindex(present).round(0)
            '''
        ),
        markdown(
            """
            ## Duplicate rate per domain

            Fraction of each domain's documents that are not their cluster's representative, split by
            why: `exact` (same normalised text as another member) or `near` (linked by MinHash only).
            """
        ),
        code(
            '''
            duplicates = query(
                """
                SELECT
                    domain,
                    count(*) AS docs,
                    avg((dup_kind = 'exact')::INTEGER) AS exact_rate,
                    avg((dup_kind = 'near')::INTEGER) AS near_rate,
                    avg(is_duplicate::INTEGER) AS duplicate_rate
                FROM documents
                GROUP BY domain
                """
            )
            duplicates["domain"] = pd.Categorical(duplicates["domain"], DOMAINS, ordered=True)
            duplicates = duplicates.sort_values("domain").reset_index(drop=True)
            fig, ax = plt.subplots()
            ax.bar(duplicates["domain"], duplicates["exact_rate"] * 100, label="exact", color="tab:red")
            ax.bar(
                duplicates["domain"],
                duplicates["near_rate"] * 100,
                bottom=duplicates["exact_rate"] * 100,
                label="near",
                color="tab:orange",
            )
            ax.set_ylabel("documents marked duplicate (%)")
            ax.set_title("Duplicate rate per domain")
            ax.legend()
            plt.show()
            duplicates.style.format({c: "{:.2%}" for c in ("exact_rate", "near_rate", "duplicate_rate")})
            '''
        ),
        code("connection.close()"),
    ]
    notebook = new_notebook(cells=cells)  # type: ignore[no-untyped-call]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def execute(notebook: Notebook) -> None:
    """Run every cell in place; matplotlib's inline backend embeds the figures as PNG outputs."""
    from nbconvert.preprocessors import ExecutePreprocessor

    # No GUI here, and no kernel should try to open one: `%matplotlib inline` in the notebook
    # overrides this for display, Agg only guards imports that happen before it.
    os.environ.setdefault("MPLBACKEND", "Agg")
    # record_timing=False keeps wall-clock timestamps out of the committed file, so re-running
    # on the same database changes nothing but genuinely different outputs.
    preprocessor = ExecutePreprocessor(  # type: ignore[no-untyped-call]
        timeout=EXECUTE_TIMEOUT_SECONDS, kernel_name="python3", record_timing=False
    )
    preprocessor.preprocess(notebook, {"metadata": {"path": str(NOTEBOOKS_DIR)}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--execute",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the notebook and keep its outputs (default); --no-execute writes the cells only",
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="relative to notebooks/")
    args = parser.parse_args(argv)
    notebook = domain_shares_notebook(args.database)
    if args.execute:
        database = (NOTEBOOKS_DIR / args.database).resolve()
        if not database.is_file():
            print(
                f"error: {database} not found; make it with `analyzer run ... --out runs/demo`",
                file=sys.stderr,
            )
            return 2
        execute(notebook)
    nbformat.validate(notebook)
    nbformat.write(notebook, DOMAIN_SHARES)  # type: ignore[no-untyped-call]
    print(f"wrote {DOMAIN_SHARES.relative_to(NOTEBOOKS_DIR.parent)}{' (executed)' if args.execute else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
