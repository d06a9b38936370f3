"""``--workers N`` of the listening commands: N processes in one consumer group, so that a machine with several cores
checks (verifies, decodes, validates) several partitions at once.

A received message costs a listener about 100-150 us of one core, mostly Python holding the GIL (Avro decoding,
validation): threads would not make it faster, processes do. The command starts N processes of itself with
``--workers 1`` and the same arguments and environment; Kafka gives each partition of the topics to one member of the
group, so every record goes to one worker and a partition's records stay in order in it. The first process only
supervises: it relays each worker's standard output whole line by whole line, forwards Ctrl-C and SIGTERM, and when a
worker fails it stops the others and exits with that worker's status (docs/OPERATIONS.md, "Several consumer processes
of one group").
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

import click

from broker.cli._common import Env, Globals, transport, where
from broker.errors import ConfigError
from broker.node.node import Delivery, Handler
from broker.node.topics import TopicLayout
from broker.transport.kafka import KafkaTransport

if TYPE_CHECKING:
    from broker.cli.send import Listening

__all__ = ["WORKER_VARIABLE", "WorkerTally", "run_workers", "worker_command"]

log = logging.getLogger("op7.cli")

#: Set to ``I/N`` in the environment of worker I of N.
WORKER_VARIABLE = "OP7_WORKER"

#: Seconds a worker has to leave its group after Ctrl-C before it is killed.
STOP_GRACE = 15.0


@dataclass
class WorkerTally:
    """What one worker hands over, told on standard error: each partition the first time it hands over a message of
    it, and how many messages when it ends."""

    index: int
    count: int
    delivered: int = 0
    partitions: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def of_environment(cls) -> WorkerTally | None:
        """This process's tally if it is a worker started by ``--workers``, else None."""
        index, _, count = os.environ.get(WORKER_VARIABLE, "").partition("/")
        return cls(int(index), int(count)) if index.isdigit() and count.isdigit() else None

    def counting(self, show: Handler) -> Handler:
        """``show``, counting each message it is handed."""

        def handle(d: Delivery) -> Any:
            self.delivered += 1
            partition = (d.record.topic, d.record.partition)
            if partition not in self.partitions:
                self.partitions.add(partition)
                click.echo(
                    f"op7: worker {self.index} of {self.count} (pid {os.getpid()}) reads {_named(*partition)}", err=True
                )
            return show(d)

        return handle

    def report(self) -> None:
        read = ", ".join(_named(*p) for p in sorted(self.partitions)) or "no partition"
        click.echo(
            f"op7: worker {self.index} of {self.count} (pid {os.getpid()}) handed over {self.delivered} "
            f"message(s) from {read}",
            err=True,
        )


def _named(topic: str, partition: int) -> str:
    return f"{topic}[{partition}]"


def run_workers(env: Env, how: Listening, topics: list[str], group: str, what: str) -> int:
    """Run the current listening command as ``how.workers`` processes of ``group`` and supervise them."""
    n = how.workers
    if how.count is not None:
        raise ConfigError(
            f"--count with --workers {n}: each worker would stop at its own count, so the command would not stop at "
            "that number of messages; use --count with one worker, or --timeout to stop once the topics are drained"
        )
    if not env.bootstrap:
        raise ConfigError(
            f"--workers {n}: the embedded transport does not share a group's records among its members (each member "
            f"reads every record, so every message would be shown {n} times); --workers needs Kafka "
            "(--bootstrap or OP7_BOOTSTRAP)"
        )
    metrics = env.settings.metrics_endpoint(how.metrics_port, how.metrics_address)
    if metrics is not None and metrics[1] + n - 1 > 65535:
        raise ConfigError(f"--metrics-port {metrics[1]} with --workers {n}: worker I serves PORT+I-1, past 65535")
    cores = os.cpu_count() or 1
    if n > cores:
        log.warning("--workers %d on %d cores: the workers will share them", n, cores)
    kafka = transport(env)
    assert isinstance(kafka, KafkaTransport)  # a bootstrap means Kafka
    layout = TopicLayout(env.topic_prefix)
    partitions = asyncio.run(kafka.partitions_of([layout.name(t) for t in topics]))
    if partitions and n > len(partitions):
        log.warning(
            "--workers %d: the topics have %d partition(s) in all and Kafka gives each to one member of group %s, "
            "so %d worker(s) will idle",
            n,
            len(partitions),
            group,
            n - len(partitions),
        )
    if how.from_now and partitions:
        asyncio.run(kafka.start_group_at_end(group, partitions))
    supervisor = Supervisor(worker_command(click.get_current_context()), n)
    supervisor.start()
    if not how.as_json:
        pids = ", ".join(str(p.pid) for p in supervisor.processes)
        served = "" if metrics is None else f"; metrics on {metrics[0]} ports {metrics[1]}-{metrics[1] + n - 1}"
        click.echo(
            f"listening for {what} on {where(env)} as group {group} with {n} workers (pids {pids}{served}; "
            "Ctrl-C to stop)",
            err=True,
        )
    return supervisor.wait()


def worker_command(ctx: click.Context) -> list[str]:
    """The command line of a worker of the command running in ``ctx``: its words, the global options as given, its
    own options with their values, and ``--workers 1``."""
    words: list[str] = []
    at: click.Context | None = ctx
    while at is not None and at.parent is not None:
        words.insert(0, at.info_name or "")
        at = at.parent
    given = ctx.find_object(Globals) or Globals()
    argv = [sys.executable, "-m", "broker.cli"]
    for name, setting in (
        ("--home", given.home),
        ("--bootstrap", given.bootstrap),
        ("--topic-prefix", given.topic_prefix),
    ):
        if setting:
            argv += [name, str(setting)]
    argv += ["-v"] * given.verbose + words
    for param in ctx.command.params:
        if not param.expose_value or param.name not in ctx.params:
            continue
        value: Any = 1 if param.name == "workers" else ctx.params[param.name]
        if isinstance(param, click.Argument):
            argv += [str(v) for v in value] if param.multiple else [str(value)]
        elif isinstance(param, click.Option) and value is not None:
            if param.is_flag:
                argv += [param.opts[0]] if value else []
            else:
                argv += [word for v in (value if param.multiple else (value,)) for word in (param.opts[0], str(v))]
    return argv


class _Terminated(BaseException):
    """SIGTERM reached the supervisor."""


def _static_member(index: int) -> dict[str, str]:
    """Worker ``index``'s own static group member id, when the listener has one: ids are unique per process."""
    base = os.environ.get(_INSTANCE_VARIABLE)
    return {_INSTANCE_VARIABLE: f"{base}-{index}"} if base else {}


_INSTANCE_VARIABLE = "OP7_KAFKA_GROUP_INSTANCE_ID"


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _prepare_worker() -> None:
    """In a worker, before it runs: Ctrl-C (SIGINT) stops it cleanly even when the supervisor was started with SIGINT
    ignored (a background job of a script), and, on Linux, the worker gets it if the supervisor dies (killed, out of
    memory), so that no worker outlives it holding partitions of the group."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128 + N when it was killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def _describe(returncode: int) -> str:
    if returncode >= 0:
        return f"ended with exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name} (exit status {exit_status(returncode)})"


class Supervisor:
    """N worker processes of one command: their output relayed whole line by whole line, their end watched."""

    def __init__(self, argv: list[str], count: int, out: IO[bytes] | None = None) -> None:
        self.argv = argv
        self.count = count
        self.out = out or sys.stdout.buffer
        self.processes: list[subprocess.Popen[bytes]] = []
        #: (worker index, its return code), or (0, the error of writing to standard output).
        self._events: queue.Queue[tuple[int, int | OSError]] = queue.Queue()
        self._write = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        sys.stdout.flush()
        for index in range(1, self.count + 1):
            process = subprocess.Popen(  # noqa: S603 (this very program, with the user's own arguments)
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env={**os.environ, WORKER_VARIABLE: f"{index}/{self.count}", **_static_member(index)},
                # Its own process group: Ctrl-C reaches the supervisor, which stops each worker once.
                start_new_session=True,
                preexec_fn=_prepare_worker,
            )
            self.processes.append(process)
        for index, process in enumerate(self.processes, 1):
            assert process.stdout is not None
            self._spawn(self._relay, process.stdout)
            self._spawn(self._watch, index, process)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay(self, pipe: IO[bytes]) -> None:
        failed = False
        for line in iter(pipe.readline, b""):
            if failed:
                continue  # read on, so that the worker never blocks on a full pipe
            try:
                with self._write:
                    self.out.write(line)
                    self.out.flush()
            except OSError as exc:
                failed = True
                self._events.put((0, exc))
        pipe.close()

    def _watch(self, index: int, process: subprocess.Popen[bytes]) -> None:
        self._events.put((index, process.wait()))

    def wait(self) -> int:
        """Wait for every worker to end; the command's exit status (0 when each ended well)."""
        previous = signal.signal(signal.SIGTERM, _terminated)
        try:
            status = self._wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        for thread in self._threads:
            thread.join()
        return status

    def _wait(self) -> int:
        status, running = 0, len(self.processes)
        while running:
            try:
                index, result = self._events.get()
            except KeyboardInterrupt:
                status = status or 130
                self.stop()
                continue
            except _Terminated:
                status = status or 128 + signal.SIGTERM
                self.stop()
                continue
            if isinstance(result, OSError):
                if not status:
                    click.echo(f"op7: error: standard output: {result}; stopping the workers", err=True)
                status = status or 1
                self.stop()
                continue
            running -= 1
            if result != 0 and not self._stopping:
                pid = self.processes[index - 1].pid
                click.echo(
                    f"op7: worker {index} of {self.count} (pid {pid}) {_describe(result)}; stopping the other workers",
                    err=True,
                )
                status = exit_status(result) or 1
                self.stop()
        return status

    def stop(self) -> None:
        """Ask every running worker to stop (SIGINT: each leaves the group at once); kill those still running after
        :data:`STOP_GRACE` seconds."""
        self._stopping = True
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
        timer = threading.Timer(STOP_GRACE, self._kill)
        timer.daemon = True
        timer.start()

    def _kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
