"""A sender's sequence numbers (docs/PROTOCOL.md section 3): drawn from one counter per node by every thread and
process of its home, a run per batch, never twice; written in the signed header, which still verifies without them."""

from __future__ import annotations

import multiprocessing
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from broker.errors import ConfigError, DecodeError, FrameError, VerificationError
from broker.models import KidnappingAlert, Tlp
from broker.node.sequence import SenderSequence
from broker.trust.store import TrustStore
from broker.wire.codec import decode_datum
from broker.wire.envelope import (
    MAX_FRAME_SIZE,
    NodeIdentity,
    build,
    build_batch,
    open_frame,
    parse_frame,
    read_header,
    write_header,
)
from broker.wire.schemas import Schema, SchemaRegistry, default_registry, schema_dir
from broker.wire.signing import SigningKey
from tests.conftest import example, now

PROCESSES = 4
DRAWS = 50


class Draws:
    """A numbering that counts how it is called: the counts asked for, from a counter starting at ``first``."""

    def __init__(self, first: int = 1) -> None:
        self.asked: list[int] = []
        self.first = first

    def __call__(self, count: int) -> int:
        self.asked.append(count)
        first = self.first
        self.first += count
        return first


def released_envelope(version: str) -> Schema:
    return SchemaRegistry(schema_dir() / "released" / version, include_released=False).get("op7.Envelope")


def resigned(frame: bytes, key: SigningKey, header: bytes) -> bytes:
    """``frame`` with its header replaced and signed again by ``key`` (a valid signature over other content)."""
    raw = parse_frame(frame)
    prefix = raw.signed[: len(raw.signed) - len(raw.header) - len(raw.payload) - 8]
    u32 = struct.Struct(">I")
    signed = prefix + u32.pack(len(header)) + header + u32.pack(len(raw.payload)) + raw.payload
    signature = key.sign(signed)
    return signed + struct.pack(">H", len(signature)) + signature


# --- the counter ------------------------------------------------------------------------------------------------


def test_numbers_start_at_1_and_a_draw_reserves_a_run(tmp_path: Path) -> None:
    sequence = SenderSequence("FR.GN", tmp_path / "sequence-FR.GN.db")
    assert sequence.last() == 0
    assert [sequence.next() for _ in range(3)] == [1, 2, 3]
    assert sequence.next(5) == 4  # 4..8 are the batch's
    assert sequence.next() == 9 and sequence.last() == 9
    with pytest.raises(ConfigError, match="0 sequence numbers asked for"):
        sequence.next(0)
    assert sequence.last() == 9


def test_the_counter_outlives_the_process_and_each_node_has_its_own(tmp_path: Path) -> None:
    path = tmp_path / "sequence.db"
    first = SenderSequence("FR.GN", path)
    assert first.next(2) == 1
    first.close()
    assert SenderSequence("FR.GN", path).next() == 3  # never again 1 or 2
    assert SenderSequence("ES.PN", path).next() == 1
    assert SenderSequence("FR.GN").next() == 1  # in memory: a node without a home
    with pytest.raises(ConfigError):
        SenderSequence("not a node")


def test_threads_drawing_from_one_file_get_every_number_once(tmp_path: Path) -> None:
    path = tmp_path / "sequence.db"
    sequences = [SenderSequence("FR.GN", path) for _ in range(2)]  # two connections, as two senders of one home
    drawn: list[int] = []
    lock = threading.Lock()

    def draw(sequence: SenderSequence, count: int) -> None:
        for _ in range(DRAWS):
            first = sequence.next(count)
            with lock:
                drawn.extend(range(first, first + count))

    threads = [threading.Thread(target=draw, args=(sequences[i % 2], 1 + i % 3)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    total = DRAWS * sum(1 + i % 3 for i in range(6))
    assert sorted(drawn) == list(range(1, total + 1))


def _draw_in_a_process(path: str, index: int, count: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait()
        sequence = SenderSequence("FR.GN", Path(path))
        results.put((index, [sequence.next(count) for _ in range(DRAWS)]))
    except Exception as exc:  # told to the test, which names it
        results.put((index, repr(exc)))


def test_processes_of_one_home_never_share_a_number_nor_skip_one(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sequence-FR.GN.db"  # not there yet: the processes create it together
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    counts = [1 + i % 2 for i in range(PROCESSES)]  # some sign single frames, some batches of two
    processes = [
        context.Process(target=_draw_in_a_process, args=(str(path), i, counts[i], barrier, results))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert all(isinstance(firsts, list) for firsts in outcomes.values()), outcomes
    numbers = sorted(n for i, firsts in outcomes.items() for first in firsts for n in range(first, first + counts[i]))
    assert numbers == list(range(1, DRAWS * sum(counts) + 1))


# --- the header -------------------------------------------------------------------------------------------------


def test_a_numbered_header_is_written_with_the_current_schema_and_read_back(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    env, frame = build(fr, alert, now=now(), sequence=41)
    header = parse_frame(frame).header
    assert env.sequence == 41 and read_header(header)["sequence"] == 41
    assert decode_datum(default_registry().get("op7.Envelope"), header)["sequence"] == 41
    with pytest.raises(DecodeError, match="trailing bytes"):
        decode_datum(released_envelope("2"), header)  # a release-2 receiver cannot read it (section 3)
    opened = open_frame(frame, trust)
    assert opened.envelope.sequence == 41 and opened.envelope.model_dump(mode="json")["sequence"] == 41


def test_frames_of_senders_that_do_not_number_still_verify(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    """A header without a number is the bytes release 1 (no network) or release 2 (a network) wrote."""
    for identity, release in ((fr, "1"), (NodeIdentity(fr.node_id, fr.key, network="exercise"), "2")):
        env, frame = build(identity, alert, now=now())
        header = parse_frame(frame).header
        assert str(decode_datum(released_envelope(release), header)["message_id"]) == env.message_id
        assert env.sequence is None and open_frame(frame, trust).envelope.sequence is None


def test_the_number_is_signed(
    fr: NodeIdentity, trust: TrustStore, keys: dict[str, SigningKey], alert: KidnappingAlert
) -> None:
    env, frame = build(fr, alert, now=now(), sequence=7)
    raw = parse_frame(frame)
    renumbered = write_header(env.model_copy(update={"sequence": 8}), default_registry())
    assert renumbered != raw.header and len(renumbered) == len(raw.header)
    forged = frame.replace(raw.header, renumbered)
    with pytest.raises(VerificationError) as info:
        open_frame(forged, trust)
    assert info.value.reason == "bad-signature"
    # Signed again by its sender, the number 0 is refused with the header, not taken as "unnumbered".
    zero = resigned(frame, keys["FR.GN"], write_header(env.model_copy(update={"sequence": 0}), default_registry()))
    with pytest.raises(DecodeError) as refused:
        open_frame(zero, trust)
    assert refused.value.reason == "invalid-header" and "sequence" in str(refused.value)


def test_a_batch_takes_one_run_in_its_order(fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert) -> None:
    alerts = [alert.model_copy(update={"alert_id": f"BATCH-{i}"}) for i in range(5)]
    draws = Draws(first=10)
    built = build_batch(fr, alerts, now=now(), sequence=draws)
    assert draws.asked == [5]  # one draw for the whole batch
    assert [open_frame(frame, trust).envelope.sequence for _, frame in built] == [10, 11, 12, 13, 14]
    assert [env.sequence for env, _ in build_batch(fr, alerts[:2], now=now(), sequence=3)] == [3, 4]


def test_no_number_goes_to_a_frame_that_is_not_built(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    draws = Draws()
    with pytest.raises(ConfigError, match="must restate it"):
        build(fr, alert, now=now(), sequence=draws, handling=alert.handling.model_copy(update={"tlp": Tlp.RED}))
    big = example("ForwardedMessage").model_copy(update={"original_frame": b"x" * MAX_FRAME_SIZE})
    es = NodeIdentity("ES.PN", fr.key)
    with pytest.raises(FrameError) as info:
        build(es, big, now=now(), sequence=draws, recipients=("MX.FGR",))
    assert info.value.reason == "too-large"
    assert draws.asked == []
    with pytest.raises(FrameError):
        build_batch(es, [big], now=now(), sequence=draws, recipients=("MX.FGR",))
    assert draws.asked == []
    _, frame = build(fr, alert, now=now(), sequence=draws)
    assert draws.asked == [1] and read_header(parse_frame(frame).header)["sequence"] == 1


def test_a_number_outside_a_long_from_1_is_refused(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    for bad in (0, -1, 2**63):
        with pytest.raises(ConfigError, match="numbers go from 1"):
            build(fr, alert, now=now(), sequence=bad)
    with pytest.raises(ConfigError, match="numbers go from 1"):
        build_batch(fr, [alert, alert], now=now(), sequence=2**63 - 1)
    assert build(fr, alert, now=now(), sequence=2**63 - 1)[0].sequence == 2**63 - 1
