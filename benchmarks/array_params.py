"""What PostgreSQL's array parameters cost in text and in binary.

A batched report of 100 outcomes passes 16 arrays (the columns of COMPLETE's `unnest`). psycopg
sends a list for a `%s` placeholder as a text array literal, which the server parses; for `%b`
it sends the array in binary. This times `SELECT count(*) FROM unnest(16 arrays)` both ways,
alternated, on the server of CORRAL_BENCH_POSTGRES (default: the local one).

    python benchmarks/array_params.py --rows 100 --runs 300
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

URL = os.environ.get("CORRAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
UNNEST = """
SELECT count(*) FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(targets)s::text[],
    %(outcomes)s::text[], %(failed)s::int[], %(workers)s::text[], %(results)s::text[],
    %(errors)s::text[], %(tracebacks)s::text[], %(retry_at)s::float8[], %(stalled)s::int[],
    %(flags)s::text[], %(details)s::text[], %(suspects)s::boolean[], %(crashes)s::int[],
    %(flag_details)s::text[])
"""


def params(n: int) -> dict[str, list[object]]:
    none: list[object] = [None] * n
    return {
        "ids": list(range(n)), "attempts": [1] * n, "targets": ["succeeded"] * n,
        "outcomes": ["succeeded"] * n, "failed": [0] * n, "workers": ["w1"] * n,
        "results": ["null"] * n, "errors": none, "tracebacks": none, "retry_at": none,
        "stalled": none, "flags": none, "details": ['{"outcome": "succeeded"}'] * n,
        "suspects": none, "crashes": none, "flag_details": none,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    values = params(args.rows)
    statements = {"text (%s)": UNNEST, "binary (%b)": UNNEST.replace(")s::", ")b::")}
    times: dict[str, list[float]] = {k: [] for k in statements}
    with psycopg.connect(URL) as conn:
        for _ in range(args.runs):
            for kind, statement in statements.items():
                started = time.perf_counter()
                conn.execute(statement, values).fetchone()
                times[kind].append(time.perf_counter() - started)
    for kind, spent in times.items():
        spent.sort()
        print(f"{kind:12} p10 {spent[len(spent) // 10] * 1000:.3f} ms, "
              f"median {spent[len(spent) // 2] * 1000:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
