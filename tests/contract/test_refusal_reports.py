"""Error reports about sealed messages: what a refusal says can quote the content, so it travels sealed to the
sender, or is reduced to the reason code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broker.errors import DecodeError
from broker.models import ErrorReport, Handling
from broker.node.refusal import SEALED_DETAIL, refusal_report
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build, open_frame, verify_frame
from broker.wire.sealing import Opener
from tests.conftest import example, now
from tests.contract.test_exchange import KEYS, SEALING, TRUST, Party, authority


def sealed_request_issued_by_another_node() -> tuple[Any, bytes]:
    """A TLP:GREEN request from FR.GN, sealed at its sender's wish, whose payload names DE.BKA as its issuer: refused
    as ``issuer-mismatch`` once opened, a fact only the sealed content holds."""
    request = example("MutualLegalAssistanceRequest")
    request = request.model_copy(
        update={
            "handling": Handling(tlp="GREEN"),
            "issuer": request.issuer.model_copy(update={"node": "DE.BKA"}),
        }
    )
    return build(
        NodeIdentity("FR.GN", KEYS["FR.GN"]),
        request,
        recipients=("ES.PN",),
        seal_to={"ES.PN": SEALING["ES.PN"].public},
        now=now(),
    )


async def test_a_refusal_of_a_sealed_message_is_reported_sealed_to_its_sender(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.x{unique}"
    env, frame = sealed_request_issued_by_another_node()
    assert env.sealed is not None and b"DE.BKA" not in frame
    async with Party(transport_factory, prefix, "ES.PN", tmp_path) as es:
        await es.node.transport.send(es.node.topic("inbox.ES.PN"), frame, key=b"k")
        stats = await es.serve()
        assert dict(stats.quarantined) == {"issuer-mismatch": 1}
    reports: list[bytes] = []
    reader = transport_factory()
    async with reader, reader.consumer([f"{prefix}.inbox.FR.GN"], f"peek-{unique}") as peek:
        for _ in range(20):
            reports += [r.value for r in await peek.fetch(timeout=0.5)]
            if reports:
                break
    (report,) = reports
    # Anyone who reads FR.GN's inbox (and trusts ES.PN) sees a report, not what was refused in the content.
    seen = verify_frame(report, TRUST).envelope
    assert seen.message_type == ErrorReport.avro_name and seen.sealed is not None
    assert b"DE.BKA" not in report
    # FR.GN opens it and reads why.
    opened = open_frame(report, TRUST, opener=Opener("FR.GN", [SEALING["FR.GN"]]))
    assert isinstance(opened.message, ErrorReport)
    assert opened.message.reason == "issuer-mismatch"
    assert "issued by DE.BKA" in opened.message.detail
    assert opened.message.message_id == env.message_id


def test_a_sender_without_an_encryption_key_gets_only_the_reason_code() -> None:
    env, frame = sealed_request_issued_by_another_node()
    error = DecodeError(f"{env.message_type} issued by DE.BKA but signed by FR.GN", reason="issuer-mismatch")
    no_key = TrustStore()
    no_key.add("FR.GN", KEYS["FR.GN"].public)  # a card without an encryption key
    report, seal = refusal_report(no_key, env, frame, error, authority("ES.PN"), now())
    assert not seal and report.reason == "issuer-mismatch" and report.detail == SEALED_DETAIL
    assert "DE.BKA" not in report.model_dump_json()
    # About a message in clear, the report says what was wrong, in clear, as before.
    clear, clear_frame = build(NodeIdentity("FR.GN", KEYS["FR.GN"]), example("NationalReport"), now=now())
    report, seal = refusal_report(TRUST, clear, clear_frame, error, authority("ES.PN"), now())
    assert not seal and "issued by DE.BKA" in report.detail
