"""A failed checkpoint or restore names CRIU's own errors (runc's message says only "criu failed")."""

from __future__ import annotations

from pathlib import Path

from vm.docker_restore import criu_reason


def test_criu_errors_come_from_the_log_the_engine_names(tmp_path: Path) -> None:
    log = tmp_path / "work" / "restore.log"
    log.parent.mkdir()
    log.write_text(
        "(00.080764) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
        "(00.587421)     29: epoll: Restore eventpoll: id 0x000118 flags 0x02\n"
        "(00.587509)     29: Error (criu/namespaces.c:258): Can't setns 7/mnt: Invalid argument\n"
        "(00.769263) Error (criu/cr-restore.c:2320): Restoring FAILED.\n")
    message = f"OCI runtime restore failed: criu failed: type NOTIFY errno 0\nlog file: {log}: unknown"
    reason = criu_reason(message)
    assert reason.startswith("OCI runtime restore failed: criu failed")
    assert "Can't setns 7/mnt: Invalid argument | Restoring FAILED." in reason
    assert "RLIMIT_NOFILE" not in reason and str(log) not in reason


def test_without_a_readable_log_the_engines_message_is_kept(tmp_path: Path) -> None:
    reason = criu_reason(f"criu failed: type NOTIFY errno 0 path= {tmp_path}/gone/criu-dump.log: unknown")
    assert reason == "criu failed: type NOTIFY errno 0"


def test_a_restore_out_of_inotify_instances_names_the_sysctl(tmp_path: Path) -> None:
    log = tmp_path / "restore.log"
    log.write_text(  # recorded: bench sandbox --sessions 16 --desktop osworld --warm-start at the stock 128
        "(00.196256)     21: \t\tCreate fd for 5\n"
        "(00.196265)     21: Error (criu/fsnotify.c:664): fsnotify: Can't create inotify for 0x000040: "
        "Too many open files\n"
        "(00.196266)     21: Error (criu/files.c:1221): Unable to open fd=6 id=0x40\n")
    reason = criu_reason(f"OCI runtime restore failed: criu failed: type NOTIFY errno 0\nlog file: {log}: unknown")
    assert "Can't create inotify for 0x000040: Too many open files" in reason
    assert "fs.inotify.max_user_instances" in reason and "sysctl -w fs.inotify.max_user_instances=8192" in reason


def test_other_restore_errors_get_no_inotify_hint(tmp_path: Path) -> None:
    log = tmp_path / "restore.log"
    log.write_text("(00.5) Error (criu/files.c:1221): Unable to open fd=6 id=0x40: Too many open files\n")
    assert "sysctl" not in criu_reason(f"criu failed log file: {log}: unknown")
