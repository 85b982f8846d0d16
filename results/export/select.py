"""Which examples go where: the train/validation split by task, the seeded task-balanced cap, and
de-duplication. All deterministic for a given seed and input."""

from __future__ import annotations

import hashlib
import random


def split_of(domain: str, task_id: str, *, val_fraction: float, seed: int) -> str:
    """'val' or 'train' for a task, the same for every run and every example of that task (no leak
    of a task's states between the splits)."""
    if val_fraction <= 0:
        return "train"
    h = hashlib.blake2b(f"{seed}\0{domain}\0{task_id}".encode(), digest_size=8).digest()
    return "val" if int.from_bytes(h, "big") / 2**64 < val_fraction else "train"


def balanced_quota(counts: list[int], cap: int, *, seed: int = 0) -> list[int]:
    """At most `cap` examples in all, as even across tasks as their sizes allow (water filling:
    each task gets an equal share, a task with fewer examples gives the rest to the others; when
    the cap does not divide evenly, a seeded shuffle decides who gets one more)."""
    quota = [0] * len(counts)
    left = cap
    open_ = [i for i, c in enumerate(counts) if c > 0]
    rng = random.Random(seed)
    while left > 0 and open_:
        rng.shuffle(open_)
        share = max(1, left // len(open_))
        still = []
        for i in open_:
            if left == 0:
                break
            take = min(share, counts[i] - quota[i], left)
            quota[i] += take
            left -= take
            if quota[i] < counts[i]:
                still.append(i)
        open_ = still
    return quota


def choose(count: int, quota: int, *, seed: int, key: str) -> list[int]:
    """`quota` of the example indices 0..count-1, seeded per task, in order."""
    if quota >= count:
        return list(range(count))
    rng = random.Random(f"{seed}\0{key}")
    return sorted(rng.sample(range(count), quota))
