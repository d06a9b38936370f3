"""The directory follower on the wire: what it reads from the directory topic is untrusted, and no record, however
made, stops it, holds up the event loop or takes the node back to an earlier version."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.models.directory import Role, SignedDirectory
from broker.node.node import Node
from broker.node.topics import DIRECTORY
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryDocument, DirectoryTrust, restore_directory
from broker.trust.store import PublicKeyCard
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import now

AUTHORITIES = [SigningKey.generate() for _ in range(3)]


async def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def chain(length: int) -> list[SignedDirectory]:
    """Versions 1..length of a network with FR.GN, each signed by two of the three authorities."""
    issued = now() - timedelta(hours=1)
    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    draft = admin.create("op7-test", 2, cards, now=issued)
    fr = PublicKeyCard("FR.GN", SigningKey.generate().public, EncryptionKey.generate().public)
    draft = admin.add_node(draft, fr, "GN", [Role.NATIONAL_NODE], ["all"], now=issued)
    versions = [admin.sign(admin.sign(draft, AUTHORITIES[0]), AUTHORITIES[1])]
    while len(versions) < length:
        versions.append(admin.sign(admin.sign(admin.renew(versions[-1], now=issued), AUTHORITIES[0]), AUTHORITIES[1]))
    return versions


def key(version: int) -> bytes:
    return f"op7-test/{version:010d}".encode()


async def test_garbage_under_a_version_s_key_does_not_stop_the_follower(
    transport_factory: Any, unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"op7.t{unique}"
    v1, v2, v3 = chain(3)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    kept = tmp_path / "directory"
    async with Node(
        transport_factory(), DirectoryTrust(trust.anchor), topic_prefix=prefix, follow_directory=False
    ) as a:
        topic = a.topic(DIRECTORY)
        await a.publish_directory(v1, "op7-test", 1)
        await a.transport.send(topic, b"\x07 not a directory", key=key(1))  # written over version 1's key
        await a.transport.send(topic, DirectoryDocument(v1).to_bytes()[:-9], key=key(2))  # cut short
        await a.publish_directory(v2, "op7-test", 2)
        with caplog.at_level(logging.WARNING, logger="op7.directory"):
            async with Node(transport_factory(), trust, topic_prefix=prefix, directory_dir=kept):
                await eventually(lambda: trust.version == 2)
                await a.transport.send(topic, b"garbage", key=key(3))
                await a.publish_directory(v3, "op7-test", 3)
                await eventually(lambda: trust.version == 3)
    assert sum("refused a directory from" in r.getMessage() for r in caplog.records) >= 3
    assert sorted(p.name for p in kept.iterdir()) == [f"{v:010d}.json" for v in (1, 2, 3)]
    # The chain kept in the home survives the topic: a restart holds version 3 before reading anything.
    restarted = DirectoryTrust(trust.anchor)
    restore_directory(kept, restarted, now())
    assert restarted.version == 3


@pytest.mark.kafka
async def test_a_tombstone_on_the_directory_topic_does_not_stop_the_follower(
    make_kafka: Any, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"op7.t{unique}"
    v1, v2 = chain(2)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    async with Node(make_kafka(), DirectoryTrust(trust.anchor), topic_prefix=prefix, follow_directory=False) as a:
        topic = a.topic(DIRECTORY)
        await a.publish_directory(v1, "op7-test", 1)
        await a.transport.send(topic, None, key=key(1))  # a tombstone: deletes version 1 at the next compaction
        with caplog.at_level(logging.WARNING, logger="op7.directory"):
            async with Node(make_kafka(), trust, topic_prefix=prefix) as follower:
                await eventually(lambda: trust.version == 1)
                await eventually(lambda: any("tombstone" in r.getMessage() for r in caplog.records))
                await a.publish_directory(v2, "op7-test", 2)
                await eventually(lambda: trust.version == 2)
                assert follower._follower is not None and not follower._follower.done()


async def test_the_follower_checks_signatures_off_the_event_loop(
    transport_factory: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"op7.t{unique}"
    (v1,) = chain(1)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    checked_in: list[threading.Thread] = []
    real = DirectoryDocument.signers

    def slow(self: DirectoryDocument, *args: Any) -> list[str]:
        checked_in.append(threading.current_thread())
        time.sleep(0.5)  # what a record padded to cost many signature checks would take
        return real(self, *args)

    monkeypatch.setattr(DirectoryDocument, "signers", slow)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with Node(
        transport_factory(), DirectoryTrust(trust.anchor), topic_prefix=prefix, follow_directory=False
    ) as a:
        await a.publish_directory(v1, "op7-test", 1)
        ticking = asyncio.create_task(tick())
        async with Node(transport_factory(), trust, topic_prefix=prefix):
            await eventually(lambda: trust.version == 1)
        ticking.cancel()
    assert checked_in and threading.main_thread() not in checked_in
    assert ticks >= 50  # the loop went on during the second of checks (two thresholds, half a second each)


async def test_a_version_erased_from_the_topic_is_installed_from_a_file(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.t{unique}"
    v1, v2, v3 = chain(3)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    async with Node(
        transport_factory(), DirectoryTrust(trust.anchor), topic_prefix=prefix, follow_directory=False
    ) as a:
        await a.publish_directory(v1, "op7-test", 1)
        await a.transport.send(a.topic(DIRECTORY), b"\x00", key=key(2))  # version 2 lost to garbage under its key
        await a.publish_directory(v3, "op7-test", 3)
        async with Node(transport_factory(), trust, topic_prefix=prefix):
            await eventually(lambda: trust.version == 1 and trust.waiting == [3])
            # The authorities hand version 2 over as a file ('op7 directory install' reads it the same way).
            DirectoryDocument(v2).to_file(tmp_path / "v2.json")
            assert trust.offer(DirectoryDocument.from_file(tmp_path / "v2.json").signed, now())
            assert trust.version == 3 and trust.waiting == []
