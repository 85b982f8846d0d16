"""What setup steps and evaluators need besides the guest: host files, folders, placeholders.

`RunContext` is shared by every task of a run. `TaskContext` is one task's view of it: the
folder OSWorld calls the task's `cache_dir` (execute `stdout` files, `vm_file`/`cloud_file`
destinations, `cache_file` lookups) and the suite's assets folder.

Each setup gets a fresh folder, remembered per guest, so evaluation on that guest finds the
files its setup wrote while concurrent sandboxes of the same task (tree search) never share one.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks.downloads import HostFiles
from harness.base.errors import TaskError

_counter = itertools.count(1)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] or "_"


@dataclass
class RunContext:
    work_root: Path
    downloads: HostFiles = field(default_factory=HostFiles)
    client_password: str = "password"  # the guest user's sudo password ({CLIENT_PASSWORD})
    screen_size: tuple[int, int] | None = None  # None: ask the guest once per task
    home: str = "/home/user"  # relative guest paths are relative to this
    command_timeout: float = 120.0
    step_timeout: float = 900.0  # any one setup step, downloads included
    now: Callable[[], datetime] | None = None  # clock for rule_relativeTime (tests pin it)
    proxy: str | None = None  # `run --proxy URL`: used by tasks marked proxy: true (benchmarks/proxy.py)
    _setup_dirs: Any = field(default_factory=weakref.WeakKeyDictionary, repr=False)
    _setup_dirs_strong: dict[int, Path] = field(default_factory=dict, repr=False)
    scoring: Any = None  # scoring.settings.ScoringSettings: getter deadline, metric threads (scoring's own)

    @classmethod
    def for_run(cls, run_dir: Path, *, screen_size: tuple[int, int] | None = None, **kwargs: Any) -> RunContext:
        """The context of a run whose scratch folders live under `<run_dir>/.work`."""
        return cls(work_root=Path(run_dir) / ".work", screen_size=screen_size, **kwargs)

    async def discard(self, task: Any) -> None:
        """Remove the task's scratch folders (setup and evaluation files fetched for it)."""
        import shutil

        root = self._task_root(task)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(root, ignore_errors=True))

    def _task_root(self, task: Any) -> Path:
        domain = getattr(task, "domain", "") or "_"
        return self.work_root / _safe(domain) / _safe(getattr(task, "id", "task"))

    def _remember(self, guest: Any, path: Path) -> None:
        try:
            self._setup_dirs[guest] = path
        except TypeError:  # guest not weak-referenceable
            self._setup_dirs_strong[id(guest)] = path

    def _recall(self, guest: Any) -> Path | None:
        try:
            return self._setup_dirs.get(guest)
        except TypeError:
            return self._setup_dirs_strong.get(id(guest))

    def for_setup(self, task: Any, guest: Any) -> TaskContext:
        """A fresh folder for one setup of `task` on `guest`."""
        folder = self._task_root(task) / f"setup-{next(_counter)}"
        self._remember(guest, folder)
        return TaskContext(run=self, task=task, work_dir=folder, setup_dir=folder)

    def for_evaluation(self, task: Any, guest: Any) -> TaskContext:
        """A fresh folder inside the setup folder of this guest (or a new one)."""
        setup_dir = self._recall(guest) or self._task_root(task) / f"setup-{next(_counter)}"
        return TaskContext(run=self, task=task, work_dir=setup_dir / f"eval-{next(_counter)}", setup_dir=setup_dir)


@dataclass
class TaskContext:
    run: RunContext
    task: Any
    work_dir: Path
    setup_dir: Path
    _screen: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)  # steps that failed without stopping (postconfig windows)
    phase: str = "config"  # which step list run_setup is in: "config" or "postconfig"

    @property
    def assets_dir(self) -> Path | None:
        return getattr(self.task, "assets_dir", None)

    def work_path(self, name: str) -> Path:
        """`name` inside the work folder; TaskError if it would escape it."""
        base = self.work_dir.resolve()
        target = (base / name).resolve()
        if not name or not target.is_relative_to(base) or target == base:
            raise TaskError(f"{name!r}: file names in the task's cache folder must stay inside it")
        return target

    def find_cached(self, name: str) -> Path | None:
        """A file written by this evaluation or by the setup of this sandbox (OSWorld's cache_file)."""
        for folder in dict.fromkeys([self.work_dir, self.setup_dir]):
            base = folder.resolve()
            target = (base / name).resolve()
            if target.is_relative_to(base) and target.is_file():
                return target
        return None

    def guest_path(self, path: str) -> str:
        """Guest paths: `~` and relative paths are relative to the user's home, as upstream's server cwd."""
        if path == "~" or path.startswith("~/"):
            return posixpath.join(self.run.home, path[2:])
        if not path.startswith("/"):
            return posixpath.join(self.run.home, path)
        return path

    async def fetch(self, ref: str) -> Path:
        return await self.run.downloads.fetch(ref, assets_dir=self.assets_dir)

    async def screen(self, guest: Any) -> tuple[int, int]:
        if self._screen is None:
            self._screen = self.run.screen_size or tuple(await guest.screen_size())  # type: ignore[assignment]
        return self._screen  # type: ignore[return-value]

    def now(self) -> datetime | None:
        return self.run.now() if self.run.now else None
