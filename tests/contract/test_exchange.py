"""Directed exchanges on both transports: receipts, answers, deadlines and reminders, resends, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.clock import ManualClock
from broker.models import Authority, MutualLegalAssistanceRequest, Receipt, Reminder
from broker.node.exchange import DeadlinePolicy, ExchangeAgent, ResendPolicy
from broker.node.exchange_store import ExchangeState, ExchangeStore
from broker.node.node import Delivery, Node
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.schemas import default_registry
from broker.wire.sealing import Opener
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example, now
from tests.contract.test_outbox import Gate

NODES = ("FR.GN", "ES.PN", "DE.BKA")
KEYS = {n: SigningKey.generate() for n in NODES}
#: Each node's encryption key: a TLP:RED request to a named node is sealed to it.
SEALING = {n: EncryptionKey.generate() for n in NODES}
TRUST = TrustStore()
for _node in NODES:
    TRUST.add(_node, KEYS[_node].public, SEALING[_node].public)


def authority(node: str) -> Authority:
    source = example("MutualLegalAssistanceRequest" if node == "FR.GN" else "MutualLegalAssistanceResponse")
    return Authority.model_validate(source.issuer.model_dump() | {"node": node})


class Party:
    """One node with its exchange agent and what its application saw."""

    def __init__(self, factory: Any, prefix: str, node_id: str, state: Path, **options: Any) -> None:
        self.node = Node(
            factory(),
            TRUST,
            NodeIdentity(node_id, KEYS[node_id]),
            topic_prefix=prefix,
            replay_guard=ReplayGuard(state / f"{node_id}-replay.db"),
            opener=Opener(node_id, [SEALING[node_id]]),
        )
        self.store = ExchangeStore(state / f"{node_id}-exchanges.db")
        self.agent = ExchangeAgent(self.node, self.store, authority(node_id), **options)
        self.seen: list[Delivery] = []

    async def __aenter__(self) -> Party:
        await self.node.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.node.stop()
        self.store.close()
        self.node.replay_guard.close()

    async def serve(self, seconds: float = 2.0) -> Any:
        return await asyncio.wait_for(self.agent.serve(self.seen.append, idle_timeout=seconds, tick_every=0.2), 60)

    def states(self, message_id: str) -> list[str]:
        return [e.state for e in self.store.events(message_id)]


async def test_a_request_answered_with_receipts_has_its_history_at_both_ends(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.x{unique}"
    request = example("MutualLegalAssistanceRequest")
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        sent = await fr.agent.send(request)
    request_id = sent.envelope.message_id
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        await es.serve()
        (delivery,) = es.seen
        assert delivery.message == request
        answer = example("MutualLegalAssistanceResponse")
        answered = await es.agent.reply(delivery, answer)
        assert answered.envelope.in_reply_to == request_id
        assert es.store.get(request_id).state is ExchangeState.ANSWERED  # type: ignore[union-attr]
        assert es.states(request_id) == ["received", "handled", "answered"]
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        await fr.serve()
        record = fr.store.get(request_id)
        assert record is not None and record.state is ExchangeState.ANSWERED
        assert record.deadline == request.deadline  # its own, earlier than the 8 hours of LifeThreatening
        print([(e.state, e.detail) for e in fr.store.events(request_id)])
        assert fr.states(request_id) == ["sent", "delivered", "answered"]
        assert [d.message for d in fr.seen] == [answer]  # the receipt is bookkeeping, the answer is for people
        events = fr.store.events(request_id)
        assert "signed receipt from ES.PN" in events[1].detail
        # The answer was acknowledged back to ES.PN in turn.
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        await es.serve(1.0)
        assert es.states(answered.envelope.message_id) == ["sent", "delivered"]


async def test_an_unanswered_request_becomes_overdue_and_the_addressee_is_reminded(
    transport_factory: Any, unique: str, tmp_path: Path, clock: ManualClock
) -> None:
    prefix = f"op7.x{unique}"
    fast = DeadlinePolicy(
        by_urgency={"LifeThreatening": timedelta(seconds=1), "Urgent": timedelta(days=3), "Routine": timedelta(days=7)}
    )
    request = example("MutualLegalAssistanceRequest").model_copy(update={"deadline": None})
    async with Party(transport_factory, prefix, "FR.GN", tmp_path, deadlines=fast) as fr:
        sent = await fr.agent.send(request)
        await fr.agent.tick()
        assert fr.store.get(sent.envelope.message_id).state is ExchangeState.SENT  # type: ignore[union-attr]
        clock.advance(timedelta(seconds=2))
        await fr.agent.tick()
        record = fr.store.get(sent.envelope.message_id)
        assert record is not None and record.state is ExchangeState.OVERDUE
        assert fr.store.select(overdue=True) == [record]
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        await es.serve()
        reminders = [d.message for d in es.seen if isinstance(d.message, Reminder)]
        assert [r.message_id for r in reminders] == [sent.envelope.message_id]
        assert "reminded" in es.states(sent.envelope.message_id)


async def test_a_resend_after_the_receiver_restarted_gets_the_same_receipt_and_one_handler_call(
    transport_factory: Any, unique: str, tmp_path: Path, clock: ManualClock
) -> None:
    prefix = f"op7.x{unique}"
    quick = ResendPolicy(first=timedelta(milliseconds=1), factor=1.0, attempts=3)
    async with Party(transport_factory, prefix, "FR.GN", tmp_path, resend=quick) as fr:
        sent = await fr.agent.send(example("MutualLegalAssistanceRequest"))
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:  # first life of ES.PN
        await es.serve(1.0)
        assert len(es.seen) == 1
    async with Party(transport_factory, prefix, "FR.GN", tmp_path, resend=quick) as fr:
        clock.advance(timedelta(seconds=1))
        await fr.agent.tick()  # no receipt read yet: resend the same bytes
        assert fr.states(sent.envelope.message_id) == ["sent", "resent"]
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:  # ES.PN restarted
        await es.serve(1.0)
        assert es.seen == []  # not handed to the application a second time
        assert "receipt-resent" in es.states(sent.envelope.message_id)
    receipts: list[bytes] = []
    consumer = transport_factory()
    async with consumer, consumer.consumer([f"{prefix}.inbox.FR.GN"], f"peek-{unique}") as peek:
        for _ in range(20):
            receipts += [r.value for r in await peek.fetch(timeout=0.5)]
    assert len(receipts) == 2 and receipts[0] == receipts[1]  # the same signed receipt, byte for byte
    async with Party(transport_factory, prefix, "FR.GN", tmp_path, resend=quick) as fr:
        await fr.serve(1.0)
        assert fr.store.get(sent.envelope.message_id).state is ExchangeState.DELIVERED  # type: ignore[union-attr]


async def test_a_receipt_not_acknowledged_in_time_waits_in_the_outbox_and_the_inbox_is_still_read(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    """During an outage a receipt can outlast the delivery timeout: the request is handled, the receipt stays in the
    outbox and goes when the cluster answers, and the next requests are read meanwhile (a pending receipt used to end
    the watch, and with it the reading of the inbox)."""
    prefix = f"op7.x{unique}"
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        sent = [await fr.agent.send(example("MutualLegalAssistanceRequest")) for _ in range(2)]
    ids = [s.envelope.message_id for s in sent]
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        es.node.courier.timeout = 0.3
        gate = Gate(es.node.transport)
        gate.plan = ["hold"]  # the first receipt is not acknowledged until the gate opens
        await es.serve(2.0)
        handled = [d.envelope.message_id for d in es.seen]
        assert sorted(handled) == sorted(ids)  # two cases: on Kafka, two partitions, in either order
        assert "receipt-pending" in es.states(handled[0])
        assert len(es.node.outbox.copies()) == 1
        gate.opened.set()
        for _ in range(200):
            if not es.node.outbox.copies():
                break
            await asyncio.sleep(0.05)
        assert es.node.outbox.copies() == []
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        await fr.serve(1.0)
        assert [fr.store.get(i).state for i in ids] == [ExchangeState.DELIVERED] * 2  # type: ignore[union-attr]


async def test_an_operations_centre_acknowledges_an_alert_and_the_issuer_keeps_who_and_when(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.x{unique}"
    alert = example("KidnappingAlert").model_copy(update={"issuer": authority("FR.GN")})
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        published = await fr.node.publish(alert)
    acknowledgement = Receipt.model_validate(
        {
            "status": alert.status,
            "sent_at": now(),
            "handling": alert.handling,
            "issuer": authority("ES.PN"),
            "message_id": published.envelope.message_id,
            "message_sender": "FR.GN",
            "message_sha256": hashlib.sha256(published.raw).hexdigest(),
            "case_id": alert.case_id,
            "state": "Acknowledged",
            "note": "acknowledged by operator jdoe of the Sala del 091",
        }
    )
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        sent = await es.node.publish(acknowledgement, recipients=("FR.GN",))
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        await fr.serve(1.0)
        [event] = fr.store.events_in_state("acknowledged")
    assert event.message_id == published.envelope.message_id
    assert event.detail == "acknowledged by ES.PN: acknowledged by operator jdoe of the Sala del 091"
    assert event.related_message_id == sent.envelope.message_id
    assert fr.seen == []  # bookkeeping, not a message for the application


async def test_refused_input_is_quarantined_and_a_known_sender_is_told(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.x{unique}"
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        sent = await fr.agent.send(example("MutualLegalAssistanceRequest"))
        # A second request dated an hour ahead: signed by FR.GN, so the sender is known.
        future = now() + timedelta(hours=1)
        early = await fr.agent.send(example("MutualLegalAssistanceRequest"), now=future)
        await fr.node.transport.send(f"{prefix}.inbox.ES.PN", b"not a frame at all", key=b"x")
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        stats = await es.serve()
        assert [d.envelope.message_id for d in es.seen] == [sent.envelope.message_id]
        assert dict(stats.quarantined) == {"from-the-future": 1, "bad-magic": 1}
        quarantine = transport_factory()
        async with quarantine, quarantine.consumer([f"{prefix}.quarantine.ES.PN"], f"q-{unique}") as reader:
            entries: list[dict[str, Any]] = []
            for _ in range(20):
                entries += [json.loads(r.value) for r in await reader.fetch(timeout=0.5)]
                if len(entries) >= 2:
                    break
        assert sorted(e["reason"] for e in entries) == ["bad-magic", "from-the-future"]
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        await fr.serve()
        refused = fr.store.get(early.envelope.message_id)
        assert refused is not None and refused.state is ExchangeState.REJECTED
        assert "from-the-future" in fr.store.events(early.envelope.message_id)[-1].detail


def test_deadline_policy_defaults_and_overrides(tmp_path: Path) -> None:
    request = example("MutualLegalAssistanceRequest")
    sent_at = request.sent_at
    routine = MutualLegalAssistanceRequest.model_validate(
        request.model_dump() | {"urgency": "Routine", "deadline": None}
    )
    assert DeadlinePolicy().deadline(routine, sent_at) == sent_at + timedelta(days=7)
    assert DeadlinePolicy().deadline(request, sent_at) == request.deadline  # its own, earlier than 8 hours
    config = tmp_path / "deadlines.json"
    config.write_text(
        json.dumps({"default": {"Routine": "10d"}, "op7.mla.MutualLegalAssistanceRequest": {"Routine": "2d"}})
    )
    assert DeadlinePolicy.load(config).deadline(routine, sent_at) == sent_at + timedelta(days=2)
    assert DeadlinePolicy().deadline(example("MutualLegalAssistanceResponse"), sent_at) is None


async def test_each_kind_of_bad_input_lands_in_quarantine_with_its_reason(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    import struct

    from broker.wire.envelope import build, parse_frame

    prefix = f"op7.x{unique}"
    fr = NodeIdentity("FR.GN", KEYS["FR.GN"])
    request = example("MutualLegalAssistanceRequest")

    def frame(**options: Any) -> bytes:
        return build(fr, request, recipients=("ES.PN",), **({"now": now()} | options))[1]

    def resign(original: bytes, *, header: bytes | None = None, payload: bytes | None = None) -> bytes:
        raw = parse_frame(original)
        head = raw.signed[: len(raw.signed) - len(raw.header) - len(raw.payload) - 8]
        header = raw.header if header is None else header
        payload = raw.payload if payload is None else payload
        signed = head + struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload
        return signed + struct.pack(">H", 64) + KEYS["FR.GN"].sign(signed)

    good = frame(message_id="01a22c53-8200-7000-8000-000000000001")
    flipped = bytearray(frame())
    flipped[-70] ^= 1
    stranger = SigningKey.generate()
    impostor_request = request.model_copy(update={"issuer": request.issuer.model_copy(update={"node": "BR.PF"})})
    unknown_sender = build(NodeIdentity("BR.PF", stranger), impostor_request, recipients=("ES.PN",), now=now())[1]
    other = frame()  # its own message id: a reused id would be refused as replayed first
    raw = parse_frame(other)
    fingerprint = default_registry().get(request.avro_name).fingerprint
    at = raw.header.index(fingerprint)
    unknown_schema = resign(other, header=raw.header[:at] + bytes(32) + raw.header[at + 32 :])
    cases = {
        "bad-signature": bytes(flipped),
        "unknown-sender": unknown_sender,
        "unknown-schema": unknown_schema,
        "undecodable": resign(frame(), payload=b"\x02\x41"),
        "stale": frame(now=now() - timedelta(days=30)),
        "replayed": frame(message_id="01a22c53-8200-7000-8000-000000000001", now=now() + timedelta(seconds=1)),
        "cannot-decrypt": frame(seal_to={"ES.PN": EncryptionKey.generate().public}),
    }
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        inbox = es.node.topic(Node.inbox_of("ES.PN"))
        await es.node.transport.send(inbox, good, key=b"k")
        for value in cases.values():
            await es.node.transport.send(inbox, value, key=b"k")
        stats = await es.serve()
        assert [d.envelope.message_id for d in es.seen] == ["01a22c53-8200-7000-8000-000000000001"]
    assert dict(stats.quarantined) == dict.fromkeys(cases, 1)


async def test_only_the_addressee_answers_or_rejects_and_a_late_refusal_does_not_undo_delivery(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    from broker.models import ErrorReport

    prefix = f"op7.x{unique}"
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        sent = await fr.agent.send(example("MutualLegalAssistanceRequest"))
    request_id = sent.envelope.message_id
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        await es.serve(1.0)
    # A third node answers and rejects FR.GN's request to ES.PN.
    answer = example("MutualLegalAssistanceResponse").model_copy(update={"issuer": authority("DE.BKA")})
    report = ErrorReport.model_validate(
        {
            "status": "Exercise",
            "sent_at": now(),
            "message_id": request_id,
            "message_sender": "FR.GN",
            "message_sha256": hashlib.sha256(sent.raw).digest(),  # the right digest: only the sender is wrong
            "reason": "stale",
            "detail": "forged",
            "handling": {"tlp": "AMBER"},
            "issuer": authority("DE.BKA").model_dump(),
        }
    )
    async with Party(transport_factory, prefix, "DE.BKA", tmp_path) as de:
        await de.node.publish(answer, recipients=("FR.GN",), in_reply_to=request_id)
        await de.node.publish(report, recipients=("FR.GN",), in_reply_to=request_id)
    async with Party(transport_factory, prefix, "FR.GN", tmp_path) as fr:
        await fr.serve()
        record = fr.store.get(request_id)
        assert record is not None and record.state is ExchangeState.DELIVERED  # not answered, not rejected
        assert "answered" not in fr.states(request_id) and "rejected" not in fr.states(request_id)
