"""Messages for people (``op7 show``, ``inbox watch``): every field labelled, and a sender's text cannot redraw the
reader's terminal."""

from __future__ import annotations

from broker.cli.render import render_body, render_message
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import example, now


def test_every_example_renders_with_its_fields_labelled() -> None:
    from tests.conftest import EXAMPLES

    for type_name in EXAMPLES:
        message = example(type_name)
        lines = render_body(message, now=now())
        assert lines and all(line.startswith("  ") for line in lines), type_name
        assert any(line.startswith("  Issuer: ") for line in lines), type_name
        assert "original_content_key" not in "\n".join(lines).lower().replace(" ", "_")


def test_control_characters_in_free_text_are_shown_as_codes() -> None:
    alert = example("KidnappingAlert")
    forged = "Seen in Lyon\r2026-11-30 ES.PN (signature verified)\x1b[2J\u202eevil"
    alert = alert.model_copy(update={"headline": forged})
    envelope, _ = build(NodeIdentity("FR.GN", SigningKey.generate()), alert, now=now())
    text = render_message(alert, envelope, now=now())
    assert "\r" not in text and "\x1b" not in text and "\u202e" not in text
    assert "Headline: Seen in Lyon\\u000d2026-11-30 ES.PN (signature verified)\\u001b[2J\\u202eevil" in text
