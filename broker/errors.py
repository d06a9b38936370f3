"""Every error op7 raises derives from :class:`Op7Error`.

::

    Op7Error
    ├── ConfigError            settings, key files or the trust store are missing or malformed
    ├── InputError             a user's input (a JSON file, a field) does not fit the shared schema
    ├── SchemaError            a schema cannot be found, parsed or resolved
    ├── MessageError           bytes received from the network were refused (they go to quarantine)
    │   ├── FrameError         not an op7 frame: bad magic, unknown version, truncated, trailing bytes
    │   ├── VerificationError  the signature does not verify, or the sender, key or use is not trusted
    │   ├── DecryptionError    a sealed payload that this node cannot open (not addressed to it, or altered)
    │   ├── DecodeError        verified bytes that do not decode with the shared schema
    │   └── PolicyError        verified, readable, but refused by policy: stale, from the future, duplicate
    ├── HandlingRuleError      an onward transmission or use the information's handling code forbids
    ├── HandlerError           application code raised while handling a verified message
    └── TransportError         the transport failed; ``retriable`` says whether trying again may help
        └── DeliveryError      a message not acknowledged in time (kept in the outbox) or refused for good

Errors from third-party libraries (aiokafka, fastavro, pydantic, cryptography) are mapped to these at the
boundary, with the original kept as ``__cause__``.
"""

from __future__ import annotations

from dataclasses import dataclass


class Op7Error(Exception):
    """Root of every op7 error."""

    retriable: bool = False


class ConfigError(Op7Error):
    """Settings, key files or the trust store are missing or malformed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a dotted field path), what was expected, what was found."""

    path: str
    message: str
    got: str | None = None

    def __str__(self) -> str:
        got = f" (got {self.got})" if self.got is not None else ""
        return f"{self.path}: {self.message}{got}" if self.path else f"{self.message}{got}"


class InputError(Op7Error):
    """A user's input does not fit the schema; ``problems`` lists every problem found, not only the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class SchemaError(Op7Error):
    """A schema cannot be found, parsed or resolved."""


class MessageError(Op7Error):
    """Bytes from the network were refused; ``reason`` is a short stable code for quarantine and metrics."""

    reason: str = "invalid-message"
    #: The verified header (a ``broker.models.Envelope``) when the refusal came after the signature check:
    #: the sender is then known.
    envelope: object | None = None

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(message)


class FrameError(MessageError):
    """Not an op7 frame (bad magic, unknown version, truncated, trailing bytes)."""

    reason = "bad-frame"


class VerificationError(MessageError):
    """The signature does not verify, or the sender or its key is not trusted.

    Deliberately one type: callers must not branch on *why* a signature failed, only log ``reason``.
    """

    reason = "bad-signature"


class DecryptionError(MessageError):
    """A sealed payload this node cannot open: it is not a recipient, or the content was altered."""

    reason = "cannot-decrypt"


class PolicyError(MessageError):
    """A verified message refused by the receiving node's policy (freshness, replay)."""

    reason = "refused"


class DecodeError(MessageError):
    """Verified bytes that do not decode with the shared schema or fail its validation."""

    reason = "undecodable"


class HandlingRuleError(Op7Error):
    """An action (forwarding, re-publishing, a use) that the information's handling code forbids."""


class HandlerError(Op7Error):
    """Application code raised while handling a verified message; the message is not acknowledged."""


class TransportError(Op7Error):
    """The transport (Kafka or embedded) failed."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


class DeliveryError(TransportError):
    """A message sent but not acknowledged: ``outcome`` is ``pending`` when it waits in the node's outbox and is sent
    again with the same bytes (it may also have arrived already: receivers recognise the copy), ``failed`` when the
    transport refused it for good (kept in the outbox for an operator: ``op7 outbox list``)."""

    def __init__(
        self, message: str, *, message_id: str, message_type: str, case_id: str | None, topic: str, outcome: str
    ) -> None:
        self.message_id = message_id
        self.message_type = message_type
        self.case_id = case_id
        self.topic = topic
        self.outcome = outcome
        super().__init__(message, retriable=outcome == "pending")
