"""The error report that tells a verified sender its message was refused, and how it may travel.

A refusal's text can quote what the refused message holds (the issuer in an ``issuer-mismatch``, counts or a country
in a validation message, a decoder's words): about a sealed message it is said sealed to the sender, or not at all.
"""

from __future__ import annotations

from datetime import datetime

from broker.errors import ConfigError, MessageError
from broker.models import Authority, Envelope, ErrorReport, new_message_id
from broker.node.acknowledge import about
from broker.wire.trust import Trust

__all__ = ["SEALED_DETAIL", "refusal_report"]

#: The detail of a report about a sealed message whose sender has no encryption key to seal the report to.
SEALED_DETAIL = (
    "the refused message was sealed; its sender has no encryption key to seal the details of the refusal to, so the "
    "report gives the reason code only"
)


def refusal_report(
    trust: Trust, env: Envelope, raw: bytes, error: MessageError, authority: Authority, now: datetime
) -> tuple[ErrorReport, bool]:
    """The report about the refused message ``env`` (whose exact bytes are ``raw``), and whether to seal it.

    About a message in clear, the report says what was wrong, in clear. About a sealed one, it says so sealed to the
    sender when the sender has a usable encryption key, and otherwise gives only the reason code and a fixed text."""
    detail, seal = str(error)[:2000], False
    if env.sealed is not None:
        try:
            trust.encryption_key(env.sender, now)
            seal = True
        except ConfigError:
            detail = SEALED_DETAIL
    report = ErrorReport(
        error_id=new_message_id(now), reason=error.reason, detail=detail, **about(env, raw, authority, now)
    )
    return report, seal
