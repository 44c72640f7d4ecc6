#!/usr/bin/env python3
"""json2csv: convert a JSON array of objects to CSV on stdout.

Usage: json2csv.py [--columns a,b,c] [--delimiter CHAR] [FILE]

Reads FILE, or stdin when FILE is omitted or "-". Columns default to the keys of all rows
in first-seen order. Exit codes: 0 ok, 1 cannot read input, 2 bad input or usage.
This is the "product" the example suite tests; it only uses the standard library.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any, NoReturn


def fail(message: str, code: int) -> NoReturn:
    print(f"json2csv: {message}", file=sys.stderr)
    sys.exit(code)


def load_rows(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}", 2)
    if not isinstance(data, list):
        fail(f"expected a JSON array of objects, got {type(data).__name__}", 2)
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            fail(f"row {index} is {type(row).__name__}, expected an object", 2)
    rows: list[dict[str, Any]] = data
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="json2csv", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default="-")
    parser.add_argument("--columns", help="comma-separated column names, in output order")
    parser.add_argument("--delimiter", default=",")
    args = parser.parse_args(argv)

    if args.file == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            fail(f"cannot read {args.file}: {error.strerror}", 1)

    rows = load_rows(text)
    if args.columns:
        columns = [name.strip() for name in args.columns.split(",") if name.strip()]
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if not rows:
        print("json2csv: warning: input has no rows", file=sys.stderr)
    writer = csv.DictWriter(
        sys.stdout,
        fieldnames=columns,
        delimiter=args.delimiter,
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    writer.writerows(rows)


if __name__ == "__main__":
    main()
