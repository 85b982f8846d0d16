"""`--record`: a screen recording per task attempt, as OSWorld's `start_recording`/`end_recording`.

ffmpeg in the sandbox grabs the display (x11grab) from the start of the agent's turn (after the
task's setup) to its end (before the evaluator runs), and the mp4 lands in the task folder as
`recording.mp4` (the report's task page shows it). It wraps any agent, so local and cluster runs
record alike. A recording that fails to start or stop is logged and skipped: it never fails the
task. Tree search may replace the home sandbox; the recording follows the one it started on.
"""

from __future__ import annotations

import logging
import shlex
from typing import Any

import anyio

from search.agent import Outcome, TaskEnv

log = logging.getLogger(__name__)

RECORDING = "recording.mp4"
_GUEST_FILE = "/tmp/cua-recording.mp4"
_FRAMERATE = 5  # a desktop changes little; 5 fps keeps ffmpeg's CPU small next to the agent's work


class RecordingAgent:
    """Any agent, with its sandbox's screen recorded while it acts."""

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)

    def __getattr__(self, name: str) -> Any:  # name, llm, describe, memory_path, ... of the agent
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:  # the runner hands `llm` to the agent
        setattr(self.inner, name, value)

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        sandbox = env.sandbox
        pid = await start_recording(sandbox)
        try:
            return await self.inner.solve(task, env)
        finally:
            if pid is not None:
                with anyio.CancelScope(shield=True):
                    data = await stop_recording(sandbox, pid)
                    if data:
                        await env.write_artifact(RECORDING, data)


async def start_recording(sandbox: Any) -> int | None:
    """Start ffmpeg in the background; its pid, or None (logged) when it could not start."""
    try:
        width, height = await sandbox.guest.screen_size()
        command = (f"rm -f {_GUEST_FILE}; nohup ffmpeg -nostdin -loglevel error -y -f x11grab "
                   f"-video_size {width}x{height} -framerate {_FRAMERATE} -i \"${{DISPLAY:-:0}}\" "
                   f"-c:v libx264 -preset ultrafast -pix_fmt yuv420p {_GUEST_FILE} "
                   f">/tmp/cua-recording.log 2>&1 </dev/null & echo $!")
        with anyio.fail_after(30):
            result = await sandbox.run(command, shell=True, timeout=20)
        return int(result.output.strip().splitlines()[-1])
    except Exception as e:  # a recording is a convenience: the task goes on without it
        log.warning("recording did not start: %s: %s", type(e).__name__, e)
        return None


async def stop_recording(sandbox: Any, pid: int) -> bytes | None:
    """Stop ffmpeg with SIGINT (it finishes the mp4), wait for it to exit, fetch the file."""
    script = (f"kill -INT {pid} 2>/dev/null; for i in $(seq 100); do kill -0 {pid} 2>/dev/null || exit 0; "
              f"sleep 0.1; done; kill -KILL {pid}; exit 1")
    try:
        with anyio.fail_after(30):
            await sandbox.run(["sh", "-c", script], timeout=20)
            data = await sandbox.download(_GUEST_FILE)
        if not data:
            log.warning("recording: no file (%s)", shlex.quote(_GUEST_FILE))
        return data
    except Exception as e:
        log.warning("recording did not stop cleanly: %s: %s", type(e).__name__, e)
        return None


def with_recording(agent: Any, record: bool) -> Any:
    return RecordingAgent(agent) if record else agent
