"""`python -m harness tasks fetch PATH`: download every `download`/`cloud_file` URL of a suite into
the run's download cache (benchmarks/prefetch.py), so runs and `tasks check` find them offline.

One line per URL as it finishes, then a summary; exit 1 when any URL failed.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any


def suite_urls(path: str, *, test_list: str | None, domains: list[str] | None) -> list[str]:
    """Every http(s) URL the selected tasks fetch on the host, in task order, deduplicated."""
    from benchmarks.loader import load_suite
    from benchmarks.task_network import download_urls

    suite = load_suite(path, test_list=test_list, domains=domains, errors="collect")
    for issue in suite.errors:
        print(f"error: {issue}", file=sys.stderr)
    return list(dict.fromkeys(url for task in suite.tasks for url in download_urls(task)))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


async def _fetch(urls: list[str], concurrency: int, attempts: int, backoff: float, allow_private: bool) -> list[Any]:
    from benchmarks.downloads import HostFiles, short_url
    from benchmarks.prefetch import fetch_all

    files = HostFiles(allow_private=allow_private)
    done = 0

    def progress(r: Any) -> None:
        nonlocal done
        done += 1
        detail = {"fetched": _mb(r.size) + (f", resumed at {_mb(r.resumed_from)}" if r.resumed_from else ""),
                  "skipped": "already cached", "failed": r.error}[r.status]
        print(f"[{done}/{len(urls)}] {r.status:<7} {short_url(r.url)} ({detail})", file=sys.stderr, flush=True)

    print(f"fetching {len(urls)} URL(s) into {files.cache_dir}", file=sys.stderr, flush=True)
    return await fetch_all(urls, files, concurrency=concurrency, attempts=attempts, backoff=backoff, on_result=progress)


def _run(args: argparse.Namespace) -> int:
    from benchmarks.downloads import short_url
    from harness.base.aio import run

    urls = suite_urls(args.path, test_list=args.test_list, domains=args.domains)
    results = run(functools.partial(_fetch, urls, args.concurrency, args.attempts, args.backoff,
                                        args.allow_private_urls))
    by = {s: [r for r in results if r.status == s] for s in ("fetched", "skipped", "failed")}
    print(f"fetched {len(by['fetched'])} ({_mb(sum(r.size for r in by['fetched']))}), "
          f"skipped {len(by['skipped'])} (already cached), failed {len(by['failed'])}")
    for r in by["failed"]:
        print(f"failed: {short_url(r.url)}: {r.error}")
    return 1 if by["failed"] else 0


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value < (1 if kind is int else 0):
            raise argparse.ArgumentTypeError(f"expected a {'whole number >= 1' if kind is int else 'number >= 0'}, got {text!r}")
        return value

    return parse


def register(tsub: argparse._SubParsersAction) -> None:
    p = tsub.add_parser("fetch", help="download a suite's task files into the download cache (resumable)")
    p.add_argument("path", help="an OSWorld evaluation_examples folder (or a suite folder)")
    p.add_argument("--test-list", help="a {domain: [ids]} file (default: test_all.json if present, else every file)")
    p.add_argument("--domain", action="append", dest="domains", help="only this domain (repeatable)")
    p.add_argument("--concurrency", type=_positive(int), default=4, help="downloads at once (default 4)")
    p.add_argument("--attempts", type=_positive(int), default=4, help="tries per URL (default 4)")
    p.add_argument("--backoff", type=_positive(float), default=1.0, help="seconds before the first retry, doubling (default 1)")
    p.add_argument("--allow-private-urls", action="store_true", help="also fetch from loopback, link-local and "
                   "private-network hosts (refused by default: task files are untrusted)")
    p.set_defaults(func=_run)
