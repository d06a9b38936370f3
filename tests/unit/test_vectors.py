"""The implementation checked against the committed test vectors (tests/vectors/, see docs/PROTOCOL.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from broker.errors import MessageError
from broker.models import message_model
from broker.models.handling import WIRE
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build, open_frame
from broker.wire.signing import SigningKey
from tests.conftest import ROOT

VECTORS = ROOT / "tests" / "vectors"
KEYS = json.loads((VECTORS / "keys.json").read_text())["keys"]
VALID = sorted((VECTORS / "valid").glob("*.json"))
INVALID = sorted((VECTORS / "invalid").glob("*.json"))


def _trust() -> TrustStore:
    return TrustStore(
        {k["node"]: [SigningKey.from_seed(bytes.fromhex(k["seed"])).public] for k in KEYS if k["trusted"]}
    )


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_keys_derive_from_their_seeds() -> None:
    for k in KEYS:
        key = SigningKey.from_seed(bytes.fromhex(k["seed"]))
        assert key.public.raw.hex() == k["public_key"]
        assert key.public.key_id.hex() == k["key_id"]


def test_there_is_a_valid_vector_for_every_message_type() -> None:
    from broker.models import MESSAGE_MODELS

    assert {_load(p)["expected"]["envelope"]["message_type"] for p in VALID} == set(MESSAGE_MODELS)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_opens_to_the_expected_message(path: Path) -> None:
    vector = _load(path)
    frame = bytes.fromhex(vector["frame_hex"])
    opened = open_frame(frame, _trust())
    assert opened.envelope.model_dump(mode="json") == vector["expected"]["envelope"]
    # As the vectors render it: every field of the record, a forwarded original's content key too.
    assert opened.message.model_dump(mode="json", context=WIRE) == vector["expected"]["message"]
    assert frame.hex() == vector["frame_hex"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_is_reproduced_byte_for_byte(path: Path) -> None:
    vector = _load(path)
    env = vector["expected"]["envelope"]
    seed = next(k["seed"] for k in KEYS if k["node"] == vector["sender"])
    model = message_model(env["message_type"])
    _, frame = build(
        NodeIdentity(vector["sender"], SigningKey.from_seed(bytes.fromhex(seed))),
        model.model_validate(vector["expected"]["message"]),
        recipients=tuple(env["recipients"]),
        now=datetime.fromisoformat(env["created_at"]),
        message_id=env["message_id"],
    )
    assert frame.hex() == vector["frame_hex"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_is_refused_for_the_expected_reason(path: Path) -> None:
    vector = _load(path)
    with pytest.raises(MessageError) as info:
        open_frame(bytes.fromhex(vector["frame_hex"]), _trust())
    assert info.value.reason == vector["expected"]["reason"]


def test_the_generator_reproduces_the_committed_vectors(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-vectors"), str(tmp_path)], check=True, timeout=120)
    generated = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.json")}
    committed = {
        p.relative_to(VECTORS): p.read_bytes()
        for p in VECTORS.rglob("*.json")
        if p.parent.name != "vectors" or p.name == "keys.json"
    }
    assert generated.keys() == committed.keys()
    stale = [str(name) for name in generated if generated[name] != committed[name]]
    assert stale == [], f"run scripts/gen-vectors: stale vectors {stale}"


SEALED = sorted((VECTORS / "sealed").glob("*.json"))


def _opener(node: str) -> Any:
    from broker.wire.sealing import Opener
    from broker.wire.signing import EncryptionKey

    seed = next(k["encryption_seed"] for k in KEYS if k["node"] == node)
    return Opener(node, [EncryptionKey.from_seed(bytes.fromhex(seed))])


@pytest.mark.parametrize("path", SEALED, ids=lambda p: p.stem)
def test_sealed_vectors(path: Path) -> None:
    vector = _load(path)
    frame = bytes.fromhex(vector["frame_hex"])
    if vector["expected"]["outcome"] == "refuse":
        with pytest.raises(MessageError) as info:
            open_frame(frame, _trust(), opener=_opener(vector["recipient"]))
        assert info.value.reason == vector["expected"]["reason"]
        return
    opened = open_frame(frame, _trust(), opener=_opener(vector["recipient"]))
    # As the vectors render it: every field of the record, a forwarded original's content key too.
    assert opened.message.model_dump(mode="json", context=WIRE) == vector["expected"]["message"]
    assert opened.envelope.model_dump(mode="json") == vector["expected"]["envelope"]
    # The documented intermediate values: AAD is the frame up to the end of the header, and the content key
    # decrypts the payload field to the plaintext Avro payload.
    from broker.wire.envelope import parse_frame
    from broker.wire.signing import aead_decrypt

    raw = parse_frame(frame)
    assert frame.hex().startswith(vector["aad_hex"])
    nonce = opened.envelope.sealed.nonce  # type: ignore[union-attr]
    plaintext = aead_decrypt(
        bytes.fromhex(vector["content_key_hex"]), nonce, raw.payload, bytes.fromhex(vector["aad_hex"])
    )
    assert plaintext.hex() == vector["payload_plaintext_hex"]


@pytest.mark.parametrize("path", sorted((VECTORS / "batch").glob("*.json")), ids=lambda p: p.stem)
def test_batch_vectors(path: Path) -> None:
    vector = _load(path)
    for frame_hex in vector["frames_hex"]:
        frame = bytes.fromhex(frame_hex)
        if vector["expected"]["outcome"] == "refuse":
            with pytest.raises(MessageError) as info:
                open_frame(frame, _trust())
            assert info.value.reason == vector["expected"]["reason"]
        else:
            assert open_frame(frame, _trust()).envelope.sender == "FR.GN"
