"""The directory through time: each frame judged by the version in force when it was signed, its keys read as of
then, a revocation counted from its time whenever it was published; versions taken in order from the anchor only.

:class:`Net` builds a network directory version by version as its authority does; the other audit tests use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.audit.history import DirectoryHistory
from broker.errors import MessageError, VerificationError
from broker.models.directory import Role, SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryDocument
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
NETWORK = "op7-audit"
ROLES = {"FR.GN": Role.NATIONAL_NODE, "ES.PN": Role.NATIONAL_NODE, "NL.AUDIT": Role.AUDITOR}


class Net:
    """A network directory as its authority edits it, from version 1 issued at ``at``: every version signed, and
    the keys of every node it ever listed (``stranger`` keys for a node in none)."""

    def __init__(
        self,
        at: datetime = T0,
        nodes: Mapping[str, Role] = ROLES,
        *,
        network: str = NETWORK,
        lifetime: timedelta = admin.DEFAULT_LIFETIME,
    ) -> None:
        self.network = network
        self.authority = SigningKey.generate()
        self.signing: dict[str, SigningKey] = {}
        self.sealing: dict[str, EncryptionKey] = {}
        card = PublicKeyCard("NL.NA1", self.authority.public, EncryptionKey.generate().public)
        draft = admin.create(network, 1, [card], now=at, expires_in=lifetime)
        for node, role in nodes.items():
            draft = admin.add_node(draft, self.card(node), f"agency {node}", [role], ["all"], now=at)
        self.versions = [admin.sign(draft, self.authority)]

    def card(self, node: str) -> PublicKeyCard:
        """``node``'s key card, its keys made on first use."""
        key = self.signing.setdefault(node, SigningKey.generate())
        return PublicKeyCard(node, key.public, self.sealing.setdefault(node, EncryptionKey.generate()).public)

    def edit(self, change: Callable[[SignedDirectory], SignedDirectory]) -> SignedDirectory:
        """The next version: ``change`` of the last one, signed."""
        self.versions.append(admin.sign(change(self.versions[-1]), self.authority))
        return self.versions[-1]

    def add(self, node: str, at: datetime, role: Role = Role.NATIONAL_NODE) -> SignedDirectory:
        return self.edit(lambda v: admin.add_node(v, self.card(node), f"agency {node}", [role], ["all"], now=at))

    def revoke(self, node: str, at: datetime, since: datetime | None = None) -> SignedDirectory:
        """The next version, issued at ``at``, revokes ``node``'s signing key from ``since`` (default ``at``)."""
        key_id = self.signing[node].public.key_id.hex()
        return self.edit(lambda v: admin.revoke_key(v, node, key_id, "compromised", since, now=at))

    def renew(self, at: datetime) -> SignedDirectory:
        return self.edit(lambda v: admin.renew(v, now=at))

    @property
    def anchor(self) -> DirectoryAnchor:
        return DirectoryAnchor.of(admin.read(self.versions[0]))

    def data(self, version: int) -> bytes:
        """Version ``version`` as the directory topic carries it."""
        return DirectoryDocument(self.versions[version - 1]).to_bytes()

    def history(self, upto: int | None = None) -> DirectoryHistory:
        """A history from the anchor that took versions 1 to ``upto`` (all) in order."""
        history = DirectoryHistory(self.anchor)
        for version in range(1, (upto or len(self.versions)) + 1):
            assert history.offer(self.data(version)) is not None
        return history

    def identity(self, node: str) -> NodeIdentity:
        self.card(node)
        return NodeIdentity(node, self.signing[node], self.network)

    def frame(self, sender: str, at: datetime, *recipients: str, seal: bool = False, **options: Any) -> bytes:
        """A frame ``sender`` signed at ``at``: an alert to every node, or case information to ``recipients``
        (sealed to them with ``seal``)."""
        message = example("CaseInformation" if recipients else "KidnappingAlert", now=at)
        seal_to = {r: self.sealing[r].public for r in recipients} if seal else None
        return build(self.identity(sender), message, now=at, recipients=recipients, seal_to=seal_to, **options)[1]


def in_force(history: DirectoryHistory, at: datetime) -> int:
    version = history.in_force(at)
    assert version is not None
    return version.directory.version


def refusal(history: DirectoryHistory, frame: bytes) -> str:
    with pytest.raises(MessageError) as info:
        history.verify(frame)
    return info.value.reason


# Keys through time


def test_a_key_revoked_later_still_verifies_what_it_signed_before() -> None:
    net = Net()
    net.revoke("FR.GN", T0 + 5 * D)
    history = net.history()
    before = history.verify(net.frame("FR.GN", T0 + 4 * D))
    assert before.envelope.sender == "FR.GN" and before.envelope.created_at == T0 + 4 * D
    assert refusal(history, net.frame("FR.GN", T0 + 5 * D)) == "key-revoked"
    assert refusal(history, net.frame("FR.GN", T0 + 6 * D)) == "key-revoked"
    history.verify(net.frame("ES.PN", T0 + 6 * D))  # other keys are untouched


def test_a_revocation_dated_back_counts_from_its_time_though_published_later() -> None:
    """A compromised key is revoked from when it was compromised: what it signed from then on is not its node's,
    even if the version in force then did not say so yet."""
    net = Net()
    net.revoke("FR.GN", T0 + 5 * D, since=T0 + 2 * D)
    history = net.history()
    history.verify(net.frame("FR.GN", T0 + D))
    with pytest.raises(VerificationError, match=r"FR.GN: key [0-9a-f]{16} was revoked at 2026-11-03T00:00:00Z"):
        history.verify(net.frame("FR.GN", T0 + 3 * D))
    # Before version 2 was taken, the history knew nothing of it.
    assert net.history(1).verify(net.frame("FR.GN", T0 + 3 * D)).envelope.sender == "FR.GN"


def test_a_node_is_unknown_before_the_version_that_adds_it() -> None:
    net = Net()
    net.add("DE.BKA", T0 + 2 * D)
    history = net.history()
    assert refusal(history, net.frame("DE.BKA", T0 + D)) == "unknown-sender"
    history.verify(net.frame("DE.BKA", T0 + 2 * D))  # in force from the instant it was issued
    history.verify(net.frame("DE.BKA", T0 + 3 * D))
    # A frame signed before the first version is judged by the first version: its keys are valid from its issue.
    assert refusal(history, net.frame("FR.GN", T0 - D)) == "key-not-yet-valid"
    assert refusal(history, net.frame("DE.BKA", T0 - D)) == "unknown-sender"


def test_a_node_removed_later_is_known_for_what_it_signed_before() -> None:
    net = Net()
    net.edit(lambda v: admin.remove_node(v, "ES.PN", now=T0 + 2 * D))
    history = net.history()
    history.verify(net.frame("ES.PN", T0 + D))
    assert refusal(history, net.frame("ES.PN", T0 + 3 * D)) == "unknown-sender"


def test_a_frame_signed_after_the_directory_in_force_expired_is_refused() -> None:
    net = Net(lifetime=10 * D)
    net.renew(T0 + 12 * D)
    history = net.history()
    history.verify(net.frame("FR.GN", T0 + 9 * D))
    with pytest.raises(VerificationError, match="directory held \\(version 1\\) expired at 2026-11-11") as info:
        history.verify(net.frame("FR.GN", T0 + 11 * D))  # after version 1 expired, before version 2
    assert info.value.reason == "directory-expired"
    history.verify(net.frame("FR.GN", T0 + 13 * D))
    assert refusal(net.history(1), net.frame("FR.GN", T0 + 13 * D)) == "directory-expired"


def test_a_rotated_key_verifies_in_its_window_only() -> None:
    net = Net()
    old = net.identity("FR.GN")
    new = SigningKey.generate()
    card = PublicKeyCard("FR.GN", new.public, EncryptionKey.generate().public)
    net.edit(lambda v: admin.rotate_key(v, card, D, now=T0 + 3 * D))
    history = net.history()
    message = example("KidnappingAlert", now=T0 + 2 * D)
    history.verify(build(old, message, now=T0 + 2 * D)[1])  # signed under version 1
    history.verify(build(old, message, now=T0 + 3 * D + H)[1])  # in the overlap
    late = build(old, message, now=T0 + 5 * D)[1]
    assert refusal(history, late) == "key-expired"
    history.verify(build(NodeIdentity("FR.GN", new, NETWORK), message, now=T0 + 5 * D)[1])
    # The new key, used before the version that lists it was issued, is not yet FR.GN's.
    early = build(NodeIdentity("FR.GN", new, NETWORK), message, now=T0 + D)[1]
    assert refusal(history, early) == "unknown-key"


def test_a_frame_of_another_network_is_refused() -> None:
    net = Net()
    other = NodeIdentity("FR.GN", net.signing["FR.GN"], "op7-exercise")
    frame = build(other, example("KidnappingAlert", now=T0 + D), now=T0 + D)[1]
    assert refusal(net.history(), frame) == "wrong-network"


# Versions taken in order


def test_versions_offered_out_of_order_wait_for_the_one_before() -> None:
    net = Net()
    for day in (2, 4):
        net.renew(T0 + day * D)
    history = DirectoryHistory(net.anchor)
    first = history.offer(net.data(1))
    assert first is not None and first.directory.version == 1
    forged = admin.sign(admin.renew(net.versions[1], now=T0 + 3 * D), SigningKey.generate())  # a version 3 too
    for data in (DirectoryDocument(forged).to_bytes(), net.data(3)):
        with pytest.raises(VerificationError, match="version 3 waits: version 2 must come first") as info:
            history.offer(data)
        assert info.value.reason == "directory-gap"
    assert [v.directory.version for v in history.versions] == [1]
    taken = history.offer(net.data(2))
    assert taken is not None and taken.directory.version == 3  # the genuine one that waited followed
    assert [v.signed for v in history.versions] == net.versions
    assert history.offer(net.data(2)) is None  # held already
    assert [in_force(history, T0 + d * D) for d in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3, 3]


def test_far_off_versions_cannot_crowd_out_the_next_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("broker.audit.history.MAX_WAITING", 2)
    net = Net()
    for day in (1, 2):
        net.renew(T0 + day * D)
    history = net.history(1)
    for version in (1000, 1001, 1002):  # unsigned bodies: anyone who can write to the topic can put them there
        body = admin.read(net.versions[0]).model_copy(update={"version": version})
        with pytest.raises(VerificationError, match="must come first"):
            history.offer(DirectoryDocument.draft(body).to_bytes())
    with pytest.raises(VerificationError, match="version 2 must come first"):
        history.offer(net.data(3))
    assert history.offer(net.data(2)) is not None
    assert [v.directory.version for v in history.versions] == [1, 2, 3]


def test_a_forked_version_is_refused_whichever_version_it_claims() -> None:
    net = Net()
    net.renew(T0 + D)
    history = net.history()
    for version in (1, 2):
        held = net.versions[version - 1]
        # Another body under the same version number (an unsigned draft keeps its version when edited).
        forged = admin.edit(held.model_copy(update={"signatures": ()}), lambda d: d["nodes"].pop(), now=T0)
        fork = admin.sign(forged, net.authority)
        with pytest.raises(VerificationError, match=f"version {version}.* a version is never replaced") as info:
            history.offer(DirectoryDocument(fork).to_bytes())
        assert info.value.reason == "directory-fork"
    # The same body with its signatures gathered again is the version held.
    resigned = admin.sign(net.versions[0].model_copy(update={"signatures": ()}), net.authority)
    assert history.offer(DirectoryDocument(resigned).to_bytes()) is None
    assert len(history.versions) == 2


def test_a_version_before_the_anchor_cannot_be_verified() -> None:
    net = Net()
    net.renew(T0 + D)
    history = DirectoryHistory(DirectoryAnchor.of(admin.read(net.versions[1])))
    assert history.offer(net.data(2)) is not None
    with pytest.raises(VerificationError, match=r"version 1 cannot be verified.* starts at version 2") as info:
        history.offer(net.data(1))
    assert info.value.reason == "directory-before-anchor"


def test_a_first_version_after_the_anchor_s_is_taken_and_judges_what_came_before() -> None:
    """The anchor holds version 1's authorities: version 2 follows from it, version 1 never read."""
    net = Net()
    net.add("DE.BKA", T0 + D)
    history = DirectoryHistory(net.anchor)
    taken = history.offer(net.data(2))
    assert taken is not None and [v.directory.version for v in history.versions] == [2]
    history.verify(net.frame("DE.BKA", T0 + 2 * D))


def test_a_version_the_authority_did_not_sign_is_refused() -> None:
    net = Net()
    impostor = SigningKey.generate()
    added = admin.add_node(net.versions[0], net.card("BR.PF"), "PF", [Role.NATIONAL_NODE], ["all"], now=T0 + D)
    history = net.history()
    with pytest.raises(VerificationError) as info:
        history.offer(DirectoryDocument(admin.sign(added, impostor)).to_bytes())
    assert info.value.reason == "directory-signatures"
    assert "BR.PF" not in history.nodes()
    assert refusal(history, net.frame("BR.PF", T0 + 2 * D)) == "unknown-sender"


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage", b"{}"])
def test_bytes_that_are_no_directory_are_refused(data: bytes) -> None:
    with pytest.raises(MessageError) as info:
        Net().history().offer(data)
    assert info.value.reason == "bad-directory"


def test_a_version_issued_before_its_predecessor_takes_force_after_it() -> None:
    """An authority's clock behind: version 3 says it was issued before version 2, which it replaced."""
    net = Net()
    net.renew(T0 + 3 * D)
    net.add("DE.BKA", T0 + 2 * D)
    net.renew(T0 + 5 * D)
    history = net.history()
    assert [in_force(history, T0 + d * D + H) for d in (0, 1, 2, 3, 4, 5)] == [1, 1, 1, 3, 3, 4]
    assert refusal(history, net.frame("DE.BKA", T0 + 2 * D + H)) == "unknown-sender"
    history.verify(net.frame("DE.BKA", T0 + 3 * D + H))


# Without an anchor


def test_without_an_anchor_the_fallback_trust_store_judges() -> None:
    net = Net()
    store = TrustStore({"FR.GN": [net.signing["FR.GN"].public]})
    history = DirectoryHistory(None, store)
    assert history.network is None and history.versions == []
    assert history.verify(net.frame("FR.GN", T0 + D)).envelope.sender == "FR.GN"
    assert refusal(history, net.frame("ES.PN", T0 + D)) == "unknown-sender"
    with pytest.raises(VerificationError) as info:
        history.offer(net.data(1))
    assert info.value.reason == "no-anchor"


def test_with_an_anchor_and_no_version_yet_nothing_verifies() -> None:
    net = Net()
    history = DirectoryHistory(net.anchor)
    assert refusal(history, net.frame("FR.GN", T0 + D)) == "no-directory"


def test_a_history_needs_an_anchor_or_a_trust_store() -> None:
    with pytest.raises(ValueError, match="an anchor or a fallback trust"):
        DirectoryHistory(None)
