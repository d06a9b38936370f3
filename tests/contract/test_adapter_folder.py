"""The folder watch on both transports: a crash at any point of a file loses nothing and sends nothing twice.

The crash is made where it hurts: after the record's frame was kept in the ledger and before the transport had it
(the process dies with the frame signed and nowhere else), and after the transport acknowledged it but before the
file moved to done/. A new node, as a restarted ``op7 adapter run`` makes, then deals with what is left.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.folder import FolderWatch
from adapters.ledger import Ledger, State
from adapters.native_json import NativeJsonAdapter
from adapters.sending import Sender
from broker.clock import ManualClock
from broker.models import KidnappingAlert
from broker.node.node import Delivery, Node
from broker.node.outbox import Outbox
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import ROOT


class Crash(Exception):
    """The process dying at this point."""


def _drop(folder: Path, name: str = "alert-142.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    shutil.copy(ROOT / "examples" / "kidnapping-alert.json", path)
    return path


@dataclass
class Site:
    """FR.GN's adapter run: its node (outbox and ledger in ``state``), the folder it watches."""

    factory: Any
    trust: TrustStore
    fr: NodeIdentity
    prefix: str
    state: Path
    clock: ManualClock

    def node(self) -> Node:
        outbox = Outbox(self.state / "outbox.db")
        return Node(self.factory(), self.trust, self.fr, topic_prefix=self.prefix, clock=self.clock, outbox=outbox)

    def watch(self, node: Node, ledger: Ledger) -> FolderWatch:
        return FolderWatch(self.state / "drop", NativeJsonAdapter(KidnappingAlert), Sender(node, ledger), self.clock)

    async def received(self) -> list[Delivery]:
        got: list[Delivery] = []
        reader = Node(self.factory(), self.trust, topic_prefix=self.prefix, clock=self.clock)
        async with reader, reader.subscribe("NL.NCC", from_beginning=True) as sub:
            await asyncio.wait_for(sub.run(got.append, idle_timeout=4), 60)
        return got


@pytest.fixture
def site(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, unique: str, tmp_path: Path, clock: ManualClock
) -> Site:
    return Site(transport_factory, trust, fr, f"op7.a{unique}", tmp_path, clock)


async def test_a_crash_after_signing_and_before_sending_sends_the_kept_frame_once(site: Site) -> None:
    dropped = _drop(site.state / "drop")
    ledger = Ledger(site.state / "ledger.db")
    node = site.node()
    async with node:

        async def dies(*_: Any, **__: Any) -> Any:
            raise Crash

        node.courier.deliver = dies  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await site.watch(node, ledger).once()
    [kept] = ledger.waiting()
    assert kept.state is State.SIGNED and kept.frame is not None
    assert dropped.exists()  # not moved: the file is read again after the restart
    node = site.node()
    async with node:  # the restarted run
        sender = Sender(node, ledger)
        assert await sender.recover() == 1  # the kept bytes, not a new signature
        [done] = await site.watch(node, ledger).once()
    assert [o.state for o in done.outcomes] == ["already sent"]
    assert [o.message_id for o in done.outcomes] == [kept.message_id]
    assert (site.state / "drop" / "done" / dropped.name).exists()
    got = await site.received()
    assert [d.envelope.message_id for d in got] == [kept.message_id]
    assert [d.raw for d in got] == [kept.frame]
    ledger.close()


async def test_a_crash_after_the_send_and_before_the_move_sends_nothing_again(site: Site) -> None:
    dropped = _drop(site.state / "drop")
    ledger = Ledger(site.state / "ledger.db")
    node = site.node()
    async with node:
        watch = site.watch(node, ledger)
        original = watch._finish

        def dies(*_: Any, **__: Any) -> Any:
            raise Crash

        watch._finish = dies  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await watch.once()
        watch._finish = original  # type: ignore[method-assign]
        assert dropped.exists()
        [done] = await watch.once()  # read again after the restart
    assert [o.state for o in done.outcomes] == ["already sent"]
    report = json.loads((site.state / "drop" / "done" / f"{dropped.name}.sent.json").read_text())
    assert [r["state"] for r in report] == ["already sent"]
    got = await site.received()
    assert len(got) == 1 and got[0].envelope.message_id == done.outcomes[0].message_id
    ledger.close()


async def test_a_bad_file_goes_to_failed_with_its_reason_and_the_good_one_is_sent(site: Site) -> None:
    folder = site.state / "drop"
    _drop(folder, "good.json")
    (folder / "bad.json").write_text('{"case_id": "X", "headline": 7}')
    (folder / "writing.json.part").write_text("{")  # not finished: left alone
    ledger = Ledger(site.state / "ledger.db")
    node = site.node()
    async with node:
        done = await site.watch(node, ledger).once()
    assert sorted(d.path.name for d in done) == ["bad.json", "good.json"]
    reason = (folder / "failed" / "bad.json.reason").read_text()
    assert "bad.json" in reason and "headline" in reason
    assert (folder / "writing.json.part").exists()
    assert len(await site.received()) == 1
    ledger.close()


async def test_a_record_the_node_refuses_goes_to_failed_and_the_files_after_it_still_go(site: Site) -> None:
    folder = site.state / "drop"
    ahead = json.loads((ROOT / "examples" / "kidnapping-alert.json").read_text()) | {"sent_at": "+1h"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ahead.json").write_text(json.dumps(ahead))  # valid, but dated an hour ahead of the node's clock
    ledger = Ledger(site.state / "ledger.db")
    node = site.node()
    async with node:
        first = await site.watch(node, ledger).once()
        _drop(folder, "later.json")
        second = await site.watch(node, ledger).once()
    assert [d.path.parent.name for d in first] == ["failed"]
    reason = (folder / "failed" / "ahead.json.reason").read_text()
    assert "not sent" in reason and "from the future" in reason
    assert [d.path.parent.name for d in second] == ["done"]
    assert len(await site.received()) == 1
    ledger.close()
