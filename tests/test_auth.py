"""API keys without a server: the keys file, token buckets, the Authenticator, the job queue's tenancy
(per-key cap, isolation, fair dispatch) and the ``atelier keys`` command. Clocks are stepped by hand."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.core.errors import ResourceExhausted, Unauthenticated, UnknownJob
from service.core.progress import CancelToken, ProgressCallback
from service.server.auth.authenticator import Authenticator
from service.server.auth.buckets import Limit, TokenBucket
from service.server.auth.keys import KeyEntry, KeysFileError, digest_of, parse_keys, read_keys
from service.server.jobs.job import JobState
from service.server.jobs.manager import JobManager, JobOutput


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def line(name: str, key: str, *limits: object) -> str:
    return ":".join([name, digest_of(key).hex(), *map(str, limits)])


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the keys file ------------------------------------------------------------------------------------
def test_keys_file_lines_comments_and_limits() -> None:
    text = "\n".join(
        [
            "# tenants",
            "",
            line("alice", "ka"),
            line("bob", "kb", 2.5) + "   # two and a half per second",
            line("carol", "kc", 1, 5),
        ]
    )
    entries = parse_keys(text)
    assert [(e.name, e.rps, e.burst) for e in entries] == [
        ("alice", None, None),
        ("bob", 2.5, None),
        ("carol", 1.0, 5),
    ]
    assert entries[0].digest == digest_of("ka")
    assert parse_keys(entries[2].line()) == [entries[2]]  # what `atelier keys new` writes reads back


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("alice", "expected name:sha256"),
        ("alice:" + "0" * 63, "64 hex digits"),
        ("alice:plaintext-key", "never the key itself"),
        ("al ice:" + "0" * 64, "not allowed"),
        ("alice:" + "0" * 64 + ":fast", "not a number"),
        ("alice:" + "0" * 64 + ":-1", ">= 0"),
        ("alice:" + "0" * 64 + ":nan", ">= 0"),
        ("alice:" + "0" * 64 + ":1:2.5", "not an integer"),
        ("alice:" + "0" * 64 + "::4", "burst needs a rate"),
        ("a:" + "0" * 64 + ":1:2:3", "got 5 fields"),
    ],
)
def test_a_malformed_line_is_refused_with_its_number(bad: str, match: str) -> None:
    text = f"# header\n{line('zed', 'kz')}\n{bad}\n"
    with pytest.raises(KeysFileError, match=match) as info:
        parse_keys(text, "keys.txt")
    assert "keys.txt, line 3:" in str(info.value)


def test_duplicate_names_and_keys_are_refused() -> None:
    with pytest.raises(KeysFileError, match="line 2: key name 'a' appears twice"):
        parse_keys(f"{line('a', 'k1')}\n{line('a', 'k2')}")
    with pytest.raises(KeysFileError, match="line 2: key 'b' has the same key"):
        parse_keys(f"{line('a', 'k1')}\n{line('b', 'k1')}")


def test_missing_file_is_a_keys_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match="cannot read the API keys file"):
        Authenticator(tmp_path / "absent")


# --- token buckets ------------------------------------------------------------------------------------
def test_bucket_grants_its_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(Limit.of(2.0, 3), clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token every 1/2 s
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)  # refused calls take nothing
    clock.now += 0.25
    assert bucket.take() == 0.0
    clock.now += 100
    assert [bucket.take() for _ in range(4)][-1] > 0  # refills to the burst, never beyond


def test_limit_defaults() -> None:
    assert Limit.of(0, 10).unlimited
    assert Limit.of(0.5, 0) == Limit(0.5, 1)  # a slow key can still make a call
    assert Limit.of(2.5, 0) == Limit(2.5, 3)


# --- the authenticator --------------------------------------------------------------------------------
def test_open_mode_serves_everyone_without_limits() -> None:
    auth = Authenticator(None, default_rps=1.0, default_burst=1)
    assert not auth.enabled
    assert [auth.check(h) for h in (None, "", "Bearer whatever", "Basic x")] == ["", "", "", ""]
    assert "open to every caller" in auth.describe()


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic a2V5", "ka"])
def test_missing_or_malformed_header_says_how_to_send_a_key(tmp_path: Path, header: str | None) -> None:
    auth = Authenticator(write(tmp_path / "keys", line("alice", "ka")))
    with pytest.raises(Unauthenticated, match="Authorization: Bearer <key>"):
        auth.check(header)


def test_good_and_wrong_keys(tmp_path: Path) -> None:
    auth = Authenticator(write(tmp_path / "keys", line("alice", "ka"), line("bob", "kb")))
    assert auth.check("Bearer ka") == "alice"
    assert auth.check("bearer  kb ") == "bob"  # the scheme is case-insensitive (RFC 6750)
    for wrong in ("Bearer kc", "Bearer ka ka", "Bearer " + digest_of("ka").hex()):
        with pytest.raises(Unauthenticated, match="not valid") as info:
            auth.check(wrong)
        assert "ka" not in str(info.value).replace("valid", "")  # the message never echoes a key


def test_rate_limit_per_key_with_defaults(tmp_path: Path) -> None:
    clock = Clock()
    keys = write(tmp_path / "keys", line("slow", "ks", 1, 2), line("dflt", "kd"), line("free", "kf", 0))
    auth = Authenticator(keys, default_rps=10, default_burst=1, clock=clock)
    auth.check("Bearer ks")
    auth.check("Bearer ks")
    with pytest.raises(ResourceExhausted, match="'slow' is over its rate limit") as info:
        auth.check("Bearer ks")
    assert info.value.retry_after_s == pytest.approx(1.0)
    auth.check("Bearer kd")
    with pytest.raises(ResourceExhausted) as info:
        auth.check("Bearer kd")  # the default: 10 rps, burst 1
    assert info.value.retry_after_s == pytest.approx(0.1)
    for _ in range(50):
        auth.check("Bearer kf")  # its own 0: unlimited, whatever the default
    clock.now += 1.0
    assert auth.check("Bearer ks") == "slow"


def test_reload_revokes_adds_and_keeps_unchanged_buckets(tmp_path: Path) -> None:
    clock = Clock()
    keys = write(tmp_path / "keys", line("alice", "ka", 1, 1), line("bob", "kb"))
    auth = Authenticator(keys, clock=clock)
    auth.check("Bearer ka")  # alice's one token is spent
    write(keys, line("alice", "ka", 1, 1), line("carol", "kc"))
    assert auth.reload()
    with pytest.raises(Unauthenticated):
        auth.check("Bearer kb")  # revoked
    assert auth.check("Bearer kc") == "carol"  # added
    with pytest.raises(ResourceExhausted):
        auth.check("Bearer ka")  # unchanged: the reload gave no fresh burst


def test_reload_of_a_broken_file_keeps_the_old_keys(tmp_path: Path, caplog: Any) -> None:
    keys = write(tmp_path / "keys", line("alice", "ka"))
    auth = Authenticator(keys)
    write(keys, line("alice", "ka"), "bob:nothex")
    assert not auth.reload()
    assert auth.check("Bearer ka") == "alice"
    assert "line 2" in caplog.text and "stay in force" in caplog.text


# --- the job queue's tenancy --------------------------------------------------------------------------
class Blocker:
    """Job functions that run until released; records the order in which they started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()
        self.cond = threading.Condition()

    def fn(self, label: str) -> Any:
        def run(token: CancelToken, progress: ProgressCallback) -> JobOutput:
            with self.cond:
                self.started.append(label)
                self.cond.notify_all()
            while not self.release.wait(0.01):
                token.check()
            return JobOutput(b"x", "image/png")

        return run

    def wait_started(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= n, 30), self.started


def manager(jobs_per_owner: int, queue_limit: int = 8) -> JobManager:
    return JobManager(
        workers=1,
        queue_limit=queue_limit,
        max_runtime_s=60,
        result_ttl_s=60,
        result_max_count=10,
        result_max_bytes=1 << 20,
        jobs_per_owner=jobs_per_owner,
    )


def test_per_key_cap_leaves_room_for_other_keys() -> None:
    jobs, work = manager(jobs_per_owner=2), Blocker()
    try:
        a1 = jobs.submit("gatys", work.fn("a1"), owner="alice")
        jobs.submit("gatys", work.fn("a2"), owner="alice")
        with pytest.raises(ResourceExhausted, match="'alice' already has 2 jobs"):
            jobs.submit("gatys", work.fn("a3"), owner="alice")
        jobs.submit("gatys", work.fn("b1"), owner="bob")  # the shared queue still has room
        for _ in range(4):
            jobs.submit("gatys", work.fn("open"))  # no owner (open mode): never capped
        jobs.cancel(a1.id)
        # A running job ends when its worker sees the token; the manager frees the key's slot before the job
        # reports its end, so once the job has ended its slot is free.
        assert a1.wait(30) and a1.state is JobState.CANCELLED
        jobs.submit("gatys", work.fn("a3"), owner="alice")  # a finished job frees the key's slot
    finally:
        work.release.set()
        jobs.close()


def test_another_keys_job_reads_as_never_existing() -> None:
    jobs, work = manager(jobs_per_owner=0), Blocker()
    try:
        job = jobs.submit("gatys", work.fn("a"), owner="alice")
        assert jobs.get(job.id, "alice") is job
        assert jobs.get(job.id) is job  # open mode / the server itself sees everything
        with pytest.raises(UnknownJob) as other:
            jobs.get(job.id, "bob")
        with pytest.raises(UnknownJob) as unknown:
            jobs.get("0" * 32, "bob")
        assert str(other.value) == str(unknown.value).replace("0" * 32, job.id)
        with pytest.raises(UnknownJob):
            jobs.cancel(job.id, owner="bob")
        assert not job.token.cancelled
    finally:
        work.release.set()
        jobs.close()


def test_expired_job_of_another_key_reads_as_never_existing() -> None:
    jobs = JobManager(
        workers=1, queue_limit=1, max_runtime_s=60, result_ttl_s=60, result_max_count=1,
        result_max_bytes=1 << 20,
    )  # fmt: skip
    try:
        done = [jobs.submit("gatys", lambda t, p: JobOutput(b"x", "image/png"), owner="alice")]
        assert done[0].wait(30)
        done.append(jobs.submit("gatys", lambda t, p: JobOutput(b"y", "image/png"), owner="alice"))
        assert done[1].wait(30)
        with pytest.raises(UnknownJob, match="expired"):
            jobs.get(done[0].id, "alice")
        with pytest.raises(UnknownJob, match="No job with id"):
            jobs.get(done[0].id, "bob")
    finally:
        jobs.close()


def test_a_free_worker_takes_turns_between_keys() -> None:
    jobs, work = manager(jobs_per_owner=0), Blocker()
    try:
        running = jobs.submit("gatys", work.fn("a1"), owner="alice")
        work.wait_started(1)
        owners = {"a": "alice", "b": "bob"}
        queued = [jobs.submit("gatys", work.fn(x), owner=owners[x[0]]) for x in ("a2", "a3", "b1", "b2")]
        work.release.set()
        for job in [running, *queued]:
            assert job.wait(30)
        # Without keys this would be a1 a2 a3 b1 b2: first in, first out.
        assert work.started == ["a1", "b1", "a2", "b2", "a3"]
    finally:
        work.release.set()
        jobs.close()


def test_without_owners_dispatch_stays_first_in_first_out() -> None:
    jobs, work = manager(jobs_per_owner=1), Blocker()
    try:
        all_jobs = [jobs.submit("gatys", work.fn(str(i))) for i in range(4)]
        work.release.set()
        for job in all_jobs:
            assert job.wait(30)
        assert work.started == ["0", "1", "2", "3"]
    finally:
        jobs.close()


# --- atelier keys -------------------------------------------------------------------------------------
def test_keys_new_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path, capsys: Any) -> None:
    keys = tmp_path / "keys"
    assert main(["keys", "new", "alice", "--file", str(keys), "--rps", "5", "--burst", "10"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key) >= 40 and key not in keys.read_text()
    assert keys.stat().st_mode & 0o077 == 0  # owner-only: the names and limits are nobody else's business
    assert main(["keys", "new", "bob", "--file", str(keys)]) == 0
    bob = capsys.readouterr().out.strip()
    assert read_keys(keys) == [
        KeyEntry("alice", digest_of(key), 5.0, 10),
        KeyEntry("bob", digest_of(bob), None, None),
    ]
    assert Authenticator(keys).check(f"Bearer {key}") == "alice"

    assert main(["keys", "new", "alice", "--file", str(keys)]) == 1  # the name is taken
    assert "already has a key named 'alice'" in capsys.readouterr().err
    assert main(["keys", "list", "--file", str(keys), "--json"]) == 0
    listed = capsys.readouterr().out
    assert '"alice"' in listed and key not in listed and digest_of(key).hex() not in listed

    assert main(["keys", "revoke", "alice", "--file", str(keys)]) == 0
    assert [e.name for e in read_keys(keys)] == ["bob"]
    assert main(["keys", "revoke", "alice", "--file", str(keys)]) == 1


def test_keys_new_refuses_bad_names_and_limits(tmp_path: Path, capsys: Any) -> None:
    keys = tmp_path / "keys"
    assert main(["keys", "new", "no spaces", "--file", str(keys)]) == 1
    assert main(["keys", "new", "x", "--file", str(keys), "--burst", "3"]) == 1
    assert "burst needs a rate" in capsys.readouterr().err
    assert not keys.exists()


def test_keys_file_from_the_environment(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("ATELIER_API_KEYS_FILE", str(tmp_path / "env-keys"))
    assert main(["keys", "new", "ci"]) == 0
    assert [e.name for e in read_keys(tmp_path / "env-keys")] == ["ci"]
    monkeypatch.delenv("ATELIER_API_KEYS_FILE")
    monkeypatch.chdir(tmp_path)  # no .env here either
    assert main(["keys", "list"]) == 1
    assert "ATELIER_API_KEYS_FILE" in capsys.readouterr().err
