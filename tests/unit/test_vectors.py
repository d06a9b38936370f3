"""The implementation checked against the committed test vectors (tests/vectors/, see docs/PROTOCOL.md)."""

from __future__ import annotations

import hashlib
import json
import re
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


AUDIT = VECTORS / "audit"


def test_audit_entries_vector() -> None:
    from broker.audit.bundle import entry_from_json
    from broker.audit.entry import GENESIS, LEAF_CONTEXT, canonical_json
    from broker.wire import merkle

    vector = _load(AUDIT / "entries.json")
    for item in vector["canonical_json"]:
        assert canonical_json(item["value"]).decode() == item["text"]
    leaves: list[bytes] = []
    for position, data in enumerate(vector["entries"]):
        entry = entry_from_json(data)
        assert (entry.index, entry.previous) == (position, leaves[-1] if leaves else GENESIS)
        assert entry.leaf_data() == LEAF_CONTEXT + data["leaf_json"].encode()
        assert entry.leaf.hex() == data["leaf"]
        leaves.append(entry.leaf)
    roots = merkle.prefix_roots(leaves, range(len(leaves) + 1))
    assert {r["size"]: r["root"] for r in vector["roots"]} == {size: root.hex() for size, root in roots.items()}
    assert (len(leaves), merkle.root(leaves).hex()) == (vector["expected"]["size"], vector["expected"]["root"])
    for item in vector["inclusion"]:
        index, size, proof = item["index"], item["size"], [bytes.fromhex(h) for h in item["proof"]]
        assert merkle.inclusion_proof(leaves[:size], index) == proof
        assert merkle.verify_inclusion(leaves[index], index, size, proof, roots[size])
    for item in vector["consistency"]:
        old, new, proof = item["old_size"], item["new_size"], [bytes.fromhex(h) for h in item["proof"]]
        assert merkle.consistency_proof(leaves[:new], old) == proof
        assert merkle.verify_consistency(old, new, roots[old], roots[new], proof)


def _directory_history(anchor: Any, directory: list[str]) -> Any:
    """The directory versions of a vector accepted from its anchor, in the order listed."""
    import base64

    from broker.audit.history import DirectoryHistory
    from broker.trust.directory import DirectoryAnchor

    history = DirectoryHistory(DirectoryAnchor.from_json(anchor, "the vector's anchor"))
    for text in directory:
        history.offer(base64.b64decode(text, validate=True))
    return history


def test_audit_checkpoint_vector() -> None:
    from broker.audit.checkpoint import Checkpoint

    vector = _load(AUDIT / "checkpoint.json")
    for k in vector["keys"]:
        key = SigningKey.from_seed(bytes.fromhex(k["seed"]))
        assert k["seed"] == hashlib.sha256(f"op7 test vector key {k['node']}".encode()).hexdigest()
        assert (key.public.raw.hex(), key.public.key_id.hex()) == (k["public_key"], k["key_id"])
    checkpoint = Checkpoint.from_bytes(vector["checkpoint"].encode())
    checkpoint.verify(_directory_history(vector["anchor"], vector["directory"]))
    assert checkpoint.signed_part().hex() == vector["signed_hex"]
    expected = vector["expected"]
    assert (checkpoint.auditor, checkpoint.size, checkpoint.root.hex()) == (
        expected["auditor"],
        expected["size"],
        expected["root"],
    )


def _bundle_refusal(bundle: dict[str, Any]) -> tuple[str, None, str]:
    """Where and why a bundle's directory or checkpoint is refused: the steps of verify_bundle, taken one by one."""
    from broker.audit.checkpoint import Checkpoint

    try:
        history = _directory_history(bundle["anchor"], bundle["directory"])
    except MessageError as exc:
        return ("directory", None, exc.reason)
    with pytest.raises(MessageError) as info:
        Checkpoint.from_bytes(bundle["checkpoint"].encode()).verify(history)
    return ("checkpoint", None, info.value.reason)


def _bundle_failures(bundle: dict[str, Any], account: Any) -> list[tuple[str, int | None, str]]:
    """The failures of verify_bundle's account, as the vectors name them: (where, entry index, reason)."""
    if account.checkpoint is None:
        assert [p.split(":")[0] for p in account.problems] == ["the bundle's directory or checkpoint does not verify"]
        return [_bundle_refusal(bundle)]
    refused = {
        int(m[1]): m[2]
        for line in account.lines
        if (m := re.fullmatch(r"entry (\d+): a message that does not verify \((.+)\)", line))
    }
    found: list[tuple[str, int | None, str]] = []
    for problem in account.problems:
        m = re.match(r"entry (\d+): (.*)", problem)
        assert m is not None, problem
        index, text = int(m[1]), m[2]
        if text.endswith("(its inclusion proof fails)"):
            found.append(("entry", index, "not-included"))
        elif text.startswith("the message does not verify"):
            found.append(("entry", index, refused[index]))
        else:
            assert text.startswith("the logged header differs"), problem
            found.append(("entry", index, "meta-differs"))
    return found


@pytest.mark.parametrize("path", sorted(AUDIT.glob("bundle-*.json")), ids=lambda p: p.stem)
def test_audit_bundle_vector(path: Path) -> None:
    from broker.audit.bundle import verify_bundle
    from broker.trust.directory import DirectoryAnchor

    vector = _load(path)
    bundle, expected = vector["bundle"], vector["expected"]
    # The anchor beside the bundle, as one obtained out of band; in these vectors the bundle carries the same.
    assert bundle["anchor"] == vector["anchor"]
    account = verify_bundle(bundle, DirectoryAnchor.from_json(vector["anchor"], path.name))
    assert account.valid == (expected["outcome"] == "accept")
    failures = [(f["where"], f.get("index"), f["reason"]) for f in expected.get("failures", [])]
    assert sorted(_bundle_failures(bundle, account), key=str) == sorted(failures, key=str)
    if account.valid:
        assert [e["index"] for e in bundle["entries"]] == expected["entries"]
        assert len(account.lines) == len(expected["entries"])
