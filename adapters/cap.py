"""OASIS Common Alerting Protocol 1.2 ``<alert>`` documents, both ways, for the kidnapping alert lifecycle.

AMBER-style child-abduction alerts are CAP documents. Read (``translate``), a CAP alert becomes a
``KidnappingAlert``; written (``render``), a ``KidnappingAlert`` becomes a CAP 1.2 document that follows the
specification's rules (element order, required elements, enumerations, identifier and references forms, times
with a zone and whole seconds), checked against the OASIS schema by the tests.

=================================  ==========================================================================
CAP                                shared model
=================================  ==========================================================================
identifier                         alert_id
sent, info/expires                 sent_at, expires_at (any zone in; out in UTC as ``-00:00``, whole seconds)
status Actual/Exercise/Test        status (System and Draft are refused: op7 sends neither)
msgType Alert/Update/Cancel        msg_type; an Update whose info says responseType AllClear is an AllClear
                                   (Ack and Error are refused: op7 has its own receipts and error reports)
references (sender,id,sent ...)    references (the ids)
incidents                          case_id (else the first referenced id, else the identifier)
scope, restriction                 handling: Public is TLP:CLEAR; ``TLP:...`` in a restriction is read back
info (one per language)            languages, the first info's headline/description/instruction, the others'
                                   in translations; urgency, severity
info/parameter ``op7:FIELD``       victims, last_seen, suspects, vehicles, ransom, references as op7 JSON
info/resource (image)              victims[0].photo, when the resource has a uri and its bytes (derefUri)
=================================  ==========================================================================

Everything else (sender, source, code, note, certainty, senderName, contact, web, areas not written by op7,
other parameters and resources...) is listed in the translation's loss report with the reason. A CAP alert
without ``op7:victims`` (any CAP alert not written by op7) names its victims in its text only: one unnamed
victim stands in, and the report says so.

XML is parsed with defusedxml: a DTD, an entity declaration or an external reference is refused, and so is a
document over ``max_bytes`` (default 5 MiB), before any of it is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from adapters.base import (
    COMMON_SETTINGS,
    InboundAdapter,
    Loss,
    OutboundAdapter,
    Rendered,
    Translation,
    envelope_fields,
    loss,
)
from broker.errors import ConfigError, InputError, Problem
from broker.models import AlertMessageType, KidnappingAlert, Message, Tlp
from broker.models.inputs import validate_outgoing

__all__ = ["NS", "CapAdapter"]

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_BYTES = 5 * 1024 * 1024
#: The shared fields carried as ``op7:FIELD`` parameters (op7 JSON), so that op7 -> CAP -> op7 keeps them.
STRUCTURED = ("victims", "last_seen", "suspects", "vehicles", "ransom")
#: The event in the languages op7 writes it in; the message type is what stands for it.
EVENT = {
    "en": "Child Abduction",
    "es": "Secuestro de menor",
    "fr": "Enlèvement d'enfant",
    "de": "Kindesentführung",
    "it": "Rapimento di minore",
    "nl": "Kinderontvoering",
    "pt": "Rapto de criança",
}
#: CAP categories a kidnapping alert belongs to: read without a loss, ``Rescue`` written.
CATEGORIES = {"Rescue", "Security"}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_FORBIDDEN_IN_ID = re.compile(r"[\s,<&]")
#: Why a CAP element has no place in the shared model, by element name.
REASONS = {
    "sender": "the CAP sender address: the signed header names the sending node",
    "source": "CAP source: no place in the shared alert",
    "restriction": "a restriction in words: the handling code says what receivers may do",
    "addresses": "CAP addresses: op7 sends to the nodes the message is addressed to",
    "code": "CAP code: no place in the shared alert",
    "note": "CAP note: no place in the shared alert",
    "incidents": "only the first incident is the case",
    "category": "a category other than Rescue or Security",
    "event": "the message type (a kidnapping alert) stands for the event; this wording is not kept",
    "responseType": "CAP responseType: no place in the shared alert",
    "certainty": "CAP certainty: no place in the shared alert",
    "audience": "CAP audience: no place in the shared alert",
    "eventCode": "an event code other than SAME CAE (child abduction emergency)",
    "effective": "CAP effective time: no place in the shared alert",
    "onset": "CAP onset time: no place in the shared alert",
    "senderName": "the issuer is the sending node's authority, from the network directory",
    "web": "CAP web link: no place in the shared alert",
    "contact": "the issuer's 24/7 contact is the sending node's, from the network directory",
    "parameter": "a CAP parameter with no place in the shared alert",
    "resource": "a resource the shared alert cannot reference (a photo needs its uri and its bytes to be digested)",
    "area": "an area with no place in the shared alert (last_seen needs a time and a country)",
    "info": "a second info block in the same language: the shared alert keeps one text per language",
    "expires": "an info block's expiry differing from the first's",
    "urgency": "an info block's urgency differing from the first's",
    "severity": "an info block's severity differing from the first's",
    "Signature": "an XML signature over the CAP document: op7 signs the message itself",
}


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


class _Reading:
    """One document being read: the problems and losses found, and which elements went into the message."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: Elements taken whole into the message, and the containers (alert, info) whose children are looked at.
        self.used: set[int] = set()
        self.opened: set[int] = set()
        self.notes: list[Loss] = []

    def take(self, parent: ET.Element, tag: str) -> list[ET.Element]:
        found = parent.findall(_q(tag))
        self.used.update(id(e) for e in found)
        return found

    def text(self, parent: ET.Element, tag: str, path: str, *, required: bool = False) -> str | None:
        found = self.take(parent, tag)
        value = (found[0].text or "").strip() if found else None
        if required and not value:
            self.problems.append(Problem(f"{path}/{tag}", "required by CAP 1.2 and missing or empty"))
        return value or None

    def time(self, value: str | None, path: str) -> datetime | None:
        if value is None:
            return None
        if not _TIME.fullmatch(value):
            self.problems.append(Problem(path, "not a CAP time with its zone (e.g. 2003-06-11T22:39:00-07:00)", value))
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            self.problems.append(Problem(path, f"not a time: {exc}", value))
            return None

    def losses(self, element: ET.Element, path: str) -> Iterator[Loss]:
        """The topmost elements not used, each with its reason."""
        counts: dict[str, int] = {}
        totals = Counter(str(child.tag) for child in element)  # counted once: a search per child is quadratic
        for child in element:
            name = _local(child.tag)
            counts[name] = counts.get(name, 0) + 1
            here = f"{path}/{name}" + (f"[{counts[name]}]" if totals[str(child.tag)] > 1 else "")
            if id(child) in self.opened:
                yield from self.losses(child, here)
                continue
            if id(child) in self.used:
                continue
            text = " ".join(t.strip() for t in child.itertext() if t.strip())
            yield loss(here, text, REASONS.get(name, "not a CAP 1.2 element the shared alert has a place for"))


class CapAdapter(InboundAdapter[KidnappingAlert], OutboundAdapter):
    """CAP 1.2 alerts in and out. Settings: the common ones (``tlp`` overrides what the scope says), ``cap_sender``
    (the ``sender`` written out; default the sending node's id) and ``max_bytes``."""

    name = "cap"
    summary = "OASIS CAP 1.2 <alert> documents (AMBER-style alerts) <-> kidnapping alerts"
    message_types = (KidnappingAlert.avro_name,)
    setting_names = (*COMMON_SETTINGS, "cap_sender", "max_bytes")

    def __init__(self, model: type[Message] | None = None, /, settings: dict[str, Any] | None = None) -> None:
        super().__init__(model, settings)
        if model is not None and model is not KidnappingAlert:
            raise ConfigError(f"the cap adapter translates kidnapping alerts, not {model.avro_name}")
        limit = self.settings.get("max_bytes", MAX_BYTES)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"adapter 'cap': max_bytes is a number of bytes above 0, not {limit!r}")
        cap_sender = self.settings.get("cap_sender")
        if cap_sender is not None and (
            not isinstance(cap_sender, str) or not cap_sender or _FORBIDDEN_IN_ID.search(cap_sender)
        ):
            raise ConfigError(
                f"adapter 'cap': cap_sender is a CAP sender (no spaces, commas, < or &), not {cap_sender!r}"
            )
        #: CAP references name the referenced alert's sender and time: those of the alerts seen so far.
        self._seen: dict[str, tuple[str, str]] = {}

    # --- in -------------------------------------------------------------------------------------------------

    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[KidnappingAlert]:
        limit = int(self.settings.get("max_bytes", MAX_BYTES))
        if len(data) > limit:
            raise InputError(source, [Problem("", f"larger than {limit:,} bytes", f"{len(data):,} bytes")])
        root = _parse(data, source)
        reading = _Reading()
        fields = self._read(root, reading)
        if reading.problems:
            raise InputError(source, reading.problems)
        lost = (*reading.losses(root, "alert"), *reading.notes)
        sender = fields.pop("_sender", None) or ""
        alert = validate_outgoing(KidnappingAlert, fields, source, now=now)
        self._seen[alert.alert_id] = (sender, _cap_time(alert.sent_at))
        return Translation(alert, source, tuple(lost))

    def _read(self, root: ET.Element, r: _Reading) -> dict[str, Any]:
        if root.tag != _q("alert"):
            got = _local(root.tag)
            namespace = str(root.tag)[1:].split("}")[0] if str(root.tag).startswith("{") else "no namespace"
            r.problems.append(Problem(got, f'not a CAP 1.2 alert (expected <alert xmlns="{NS}">)', namespace))
            return {}
        r.opened.add(id(root))
        alert_id = r.text(root, "identifier", "alert", required=True)
        if alert_id and not _ID.fullmatch(alert_id):
            r.problems.append(
                Problem("alert/identifier", "op7 ids are letters, digits and . _ : / - (100 at most)", alert_id)
            )
        sender = (root.findtext(_q("sender")) or "").strip()
        if not sender:
            r.problems.append(Problem("alert/sender", "required by CAP 1.2 and missing or empty"))
        elif _FORBIDDEN_IN_ID.search(sender):
            r.problems.append(Problem("alert/sender", "CAP 1.2: no spaces, commas, < or & in a sender", sender))
        sent = r.time(r.text(root, "sent", "alert", required=True), "alert/sent")
        status = r.text(root, "status", "alert", required=True)
        if status in {"System", "Draft"}:
            why = "a draft is not sent" if status == "Draft" else "system messages are CAP network housekeeping"
            r.problems.append(Problem("alert/status", f"refused: {why}; op7 sends Actual, Exercise and Test", status))
        msg_type = r.text(root, "msgType", "alert", required=True)
        if msg_type in {"Ack", "Error"}:
            r.problems.append(
                Problem("alert/msgType", "refused: op7 acknowledges and reports errors with its own messages", msg_type)
            )
        handling = self._handling(root, r)
        references = self._references(root, r)
        incidents = (r.text(root, "incidents", "alert") or "").split()
        if len(incidents) > 1:
            r.notes.append(loss("alert/incidents", " ".join(incidents[1:]), REASONS["incidents"]))
        infos = root.findall(_q("info"))
        r.opened.update(id(i) for i in infos)
        if not infos:
            r.problems.append(Problem("alert/info", "a kidnapping alert needs at least one info block (its text)"))
            return {}
        fields = self._infos(infos, r)
        clears = fields.pop("_all_clear", [])
        if clears and msg_type == "Update":
            msg_type = AlertMessageType.ALL_CLEAR.value
            r.used.update(id(e) for e in clears)  # AllClear is the message type; other response types are losses
        references = fields.pop("_references", None) or references
        victims = fields.get("victims")
        if fields.pop("_stand_in", False) or not victims:
            fields["victims"] = victims or [{"given_names": "Unknown", "family_names": "Unknown"}]
            r.notes.append(
                loss("victims", "(none structured)", "a CAP alert names its victims in its text: one unnamed stands in")
            )
        settings = dict(self.settings)
        settings.setdefault("tlp", handling[0])
        settings.setdefault("restrictions", handling[1])
        if status in {"Actual", "Exercise", "Test"}:
            settings["status"] = status
        return {
            **fields,
            **envelope_fields(settings, self.name),
            "alert_id": alert_id,
            "case_id": incidents[0] if incidents else (references[0] if references else alert_id),
            "msg_type": msg_type,
            "references": references,
            "sent_at": sent,
            "_sender": sender,
        }

    def _handling(self, root: ET.Element, r: _Reading) -> tuple[str, list[str]]:
        scope = r.text(root, "scope", "alert", required=True)
        restriction = root.find(_q("restriction"))
        text = (restriction.text or "").strip() if restriction is not None else ""
        match = re.fullmatch(r"TLP:([A-Z_+]+)((?:; [A-Z_]+)*)", text)
        if match and match.group(1).replace("+", "_") in Tlp.__members__.values():
            r.used.add(id(restriction))
            return match.group(1), [x for x in match.group(2).split("; ") if x]
        return ("CLEAR" if scope == "Public" else "AMBER"), []

    def _references(self, root: ET.Element, r: _Reading) -> list[str]:
        ids = []
        for triple in (r.text(root, "references", "alert") or "").split():
            parts = triple.split(",")
            if len(parts) != 3 or not all(parts) or not _TIME.fullmatch(parts[2]):
                r.problems.append(Problem("alert/references", "each reference is sender,identifier,sent", triple))
                continue
            ids.append(parts[1])
        return ids

    def _infos(self, infos: list[ET.Element], r: _Reading) -> dict[str, Any]:
        first = infos[0]
        fields: dict[str, Any] = {}
        languages: list[str] = []
        written: set[str] = set()  # the languages seen so far: looked up once per info block
        translations = []
        clears: list[ET.Element] = []
        for n, info in enumerate(infos, 1):
            path = f"alert/info[{n}]" if len(infos) > 1 else "alert/info"
            language = (info.findtext(_q("language")) or "en-US").strip()
            if language in written:
                r.opened.discard(id(info))  # reported whole, with its reason
                continue
            languages.append(language)
            written.add(language)
            r.take(info, "language")
            if info is first or clears:
                clears += [e for e in info.findall(_q("responseType")) if (e.text or "").strip() == "AllClear"]
            self._common(info, first, path, language, r)
            headline = r.text(info, "headline", path) or r.text(info, "event", path)
            text = {
                "headline": headline,
                "description": r.text(info, "description", path),
                "instruction": r.text(info, "instruction", path),
            }
            if info is first:
                fields |= text
                fields["urgency"] = r.text(info, "urgency", path, required=True)
                fields["severity"] = r.text(info, "severity", path, required=True)
                fields["expires_at"] = r.time(r.text(info, "expires", path), f"{path}/expires")
                fields |= self._parameters(info, path, r)
                self._photo(info, fields, path, r)
                self._areas(info, fields, r)
            else:
                translations.append({"language": language, **text})
                self._parameters(info, path, r)  # the same structured fields, written in each info
                for tag in ("urgency", "severity", "expires"):
                    if info.findtext(_q(tag)) == first.findtext(_q(tag)):
                        r.take(info, tag)
                if fields.get("victims") or fields.get("last_seen"):
                    self._areas(info, fields, r)
                    self._photo(info, fields, path, r)
        return {**fields, "languages": languages, "translations": translations, "_all_clear": clears}

    def _common(self, info: ET.Element, first: ET.Element, path: str, language: str, r: _Reading) -> None:
        """Elements every kidnapping alert's info has: its category, its event code, its event wording."""
        r.used.update(id(c) for c in info.findall(_q("category")) if c.text in CATEGORIES)
        for code in info.findall(_q("eventCode")):
            if (code.findtext(_q("valueName")), code.findtext(_q("value"))) == ("SAME", "CAE"):
                r.used.add(id(code))
        event = info.find(_q("event"))
        if event is not None and (event.text or "").strip() == EVENT.get(language.split("-")[0].lower(), EVENT["en"]):
            r.used.add(id(event))
        if event is None:
            r.problems.append(Problem(f"{path}/event", "required by CAP 1.2 and missing"))
        if info.findtext(_q("certainty")) == "Unknown":
            r.take(info, "certainty")  # what op7 writes: nothing is lost
        for tag in ("urgency", "severity", "certainty"):
            if info.find(_q(tag)) is None:
                r.problems.append(Problem(f"{path}/{tag}", "required by CAP 1.2 and missing"))

    def _parameters(self, info: ET.Element, path: str, r: _Reading) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for n, parameter in enumerate(info.findall(_q("parameter")), 1):
            name = (parameter.findtext(_q("valueName")) or "").strip()
            field = name.removeprefix("op7:")
            if field not in (*STRUCTURED, "references") or field == name:
                continue
            r.used.add(id(parameter))
            where = f"{path}/parameter[{n}] ({name})"
            try:
                value = json.loads(parameter.findtext(_q("value")) or "")
            except json.JSONDecodeError as exc:
                r.problems.append(Problem(where, f"not op7 JSON: {exc.msg}"))
                continue
            except (ValueError, RecursionError) as exc:  # an integer too long, arrays nested too deeply
                r.problems.append(Problem(where, f"not op7 JSON: {exc}"[:200]))
                continue
            if not _shaped(field, value):
                r.problems.append(Problem(where, f"not op7 JSON for {field}: expected {SHAPES[field][1]}"))
                continue
            fields[field if field != "references" else "_references"] = value
        return fields

    def _photo(self, info: ET.Element, fields: dict[str, Any], path: str, r: _Reading) -> None:
        victims = fields.get("victims") or []
        photos = [v["photo"] for v in victims if isinstance(v.get("photo"), dict)]
        written = {photo["uri"] for photo in photos if isinstance(photo.get("uri"), str)}
        resources = info.findall(_q("resource"))
        for n, resource in enumerate(resources, 1):
            uri, mime = resource.findtext(_q("uri")), (resource.findtext(_q("mimeType")) or "").strip()
            if uri in written:
                r.used.add(id(resource))
                continue
            deref = resource.findtext(_q("derefUri"))
            if not (uri and deref and mime.startswith("image/")) or (victims and victims[0].get("photo")):
                continue
            try:
                image = base64.b64decode(deref, validate=True)
            except (binascii.Error, ValueError):
                where = f"{path}/resource" + (f"[{n}]" if len(resources) > 1 else "")
                r.problems.append(Problem(f"{where}/derefUri", "not base64"))
                continue
            if not victims:
                victims = fields["victims"] = [{"given_names": "Unknown", "family_names": "Unknown"}]
                fields["_stand_in"] = True
            victims[0]["photo"] = {"uri": uri, "media_type": mime, "sha256": hashlib.sha256(image).hexdigest()}
            r.used.add(id(resource))

    def _areas(self, info: ET.Element, fields: dict[str, Any], r: _Reading) -> None:
        seen = fields.get("last_seen")
        place = seen.get("place") if isinstance(seen, dict) else None
        for area in info.findall(_q("area")):
            if place is not None and (area.findtext(_q("areaDesc")) or "").strip() == place:
                r.used.add(id(area))

    # --- out ------------------------------------------------------------------------------------------------

    def render(self, message: Message, *, message_id: str, sender: str) -> Rendered:
        if not isinstance(message, KidnappingAlert):
            raise ConfigError(f"the cap adapter writes kidnapping alerts, not {message.avro_name}")
        lost: list[Loss] = []
        cap_sender = str(self.settings.get("cap_sender") or sender)
        self._seen[message.alert_id] = (cap_sender, _cap_time(message.sent_at))
        root = ET.Element(_q("alert"))
        _add(root, "identifier", message.alert_id)
        _add(root, "sender", cap_sender)
        _add(root, "sent", _cap_time(message.sent_at, lost, "sent_at"))
        _add(root, "status", message.status.value)
        all_clear = message.msg_type is AlertMessageType.ALL_CLEAR
        _add(root, "msgType", "Update" if all_clear else message.msg_type.value)
        tlp = message.handling.tlp
        _add(root, "scope", "Public" if tlp is Tlp.CLEAR else "Restricted")
        if tlp is not Tlp.CLEAR:
            written = tlp.value.replace("_", "+")
            _add(root, "restriction", "; ".join([f"TLP:{written}", *(r.value for r in message.handling.restrictions)]))
        elif message.handling.restrictions:
            kept = " ".join(r.value for r in message.handling.restrictions)
            lost.append(loss("handling.restrictions", kept, "a Public CAP alert has no restriction to write them in"))
        known = [f"{self._seen[a][0]},{a},{self._seen[a][1]}" for a in message.references if a in self._seen]
        unknown = [a for a in message.references if a not in self._seen]
        if known:
            _add(root, "references", " ".join(known))
        if unknown:
            lost.append(loss("references", " ".join(unknown), "sender and time not known here: in op7:references only"))
        _add(root, "incidents", message.case_id)
        texts = [(message.languages[0], message.headline, message.description, message.instruction)]
        for n, t in enumerate(message.translations):
            if t.language == message.languages[0]:  # the model allows it when a language is listed twice
                lost.append(loss(f"translations[{n}]", t.headline, "in the first language again: one info a language"))
            else:
                texts.append((t.language, t.headline, t.description, t.instruction))
        for language, headline, description, instruction in texts:
            self._info(root, message, language, (headline, description, instruction), all_clear, lost)
        translated = {t.language for t in message.translations}  # built once: per language it is quadratic
        untranslated = [x for x in message.languages[1:] if x not in translated]
        if untranslated:
            lost.append(loss("languages", " ".join(untranslated), "listed without a text: no info block for it"))
        ET.indent(root)
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)
        return Rendered(data + b"\n", "application/cap+xml", ".xml", tuple(lost))

    def _info(
        self,
        root: ET.Element,
        message: KidnappingAlert,
        language: str,
        text: tuple[str, str | None, str | None],
        all_clear: bool,
        lost: list[Loss],
    ) -> None:
        first = language == message.languages[0]
        info = _add(root, "info")
        _add(info, "language", language)
        _add(info, "category", "Rescue")
        _add(info, "event", EVENT.get(language.split("-")[0].lower(), EVENT["en"]))
        if all_clear:
            _add(info, "responseType", "AllClear")
        _add(info, "urgency", message.urgency.value)
        _add(info, "severity", message.severity.value)
        _add(info, "certainty", "Unknown")  # required by CAP; the shared alert has no certainty
        code = _add(info, "eventCode")
        _add(code, "valueName", "SAME")
        _add(code, "value", "CAE")
        if message.expires_at is not None:
            _add(info, "expires", _cap_time(message.expires_at, lost if first else None, "expires_at"))
        _add(info, "senderName", message.issuer.name)
        headline, description, instruction = text
        _add(info, "headline", headline)
        if description:
            _add(info, "description", description)
        if instruction:
            _add(info, "instruction", instruction)
        contact = message.issuer.contact
        _add(info, "contact", ", ".join(x for x in (contact.desk, contact.phone, contact.email) if x))
        for field in STRUCTURED:
            value = getattr(message, field)
            if value:
                parameter = _add(info, "parameter")
                _add(parameter, "valueName", f"op7:{field}")
                dumped = (
                    [v.model_dump(mode="json") for v in value]
                    if isinstance(value, tuple)
                    else value.model_dump(mode="json")
                )
                _add(parameter, "value", json.dumps(dumped, ensure_ascii=False, separators=(",", ":")))
        if message.references:
            parameter = _add(info, "parameter")
            _add(parameter, "valueName", "op7:references")
            _add(parameter, "value", json.dumps(list(message.references)))
        for n, victim in enumerate(message.victims, 1):
            if victim.photo is not None:
                resource = _add(info, "resource")
                _add(resource, "resourceDesc", f"Photo of victim {n}")
                _add(resource, "mimeType", victim.photo.media_type)
                _add(resource, "uri", victim.photo.uri)
        if message.last_seen is not None:
            area = _add(info, "area")
            _add(area, "areaDesc", message.last_seen.place)
            position = message.last_seen.position
            if position is not None:
                _add(area, "circle", f"{_degrees(position.latitude)},{_degrees(position.longitude)} 0")


#: The JSON an ``op7:FIELD`` parameter holds: a list of objects, an object, or a list of ids.
SHAPES: dict[str, tuple[type, str]] = {
    "victims": (dict, "a list of objects"),
    "suspects": (dict, "a list of objects"),
    "vehicles": (dict, "a list of objects"),
    "references": (str, "a list of ids"),
    "last_seen": (dict, "an object"),
    "ransom": (dict, "an object"),
}


def _shaped(field: str, value: object) -> bool:
    kind, _ = SHAPES[field]
    if field in ("last_seen", "ransom"):
        return isinstance(value, dict)
    return isinstance(value, list) and all(isinstance(item, kind) for item in value)


def _add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, _q(tag))
    if text is not None:
        element.text = text
    return element


def _degrees(value: float) -> str:
    """Decimal degrees as CAP writes them: never in exponent form (``1e-05`` is written ``0.00001``)."""
    return format(Decimal(repr(value)), "f")


def _cap_time(value: datetime, lost: list[Loss] | None = None, field: str = "") -> str:
    """A CAP time: whole seconds, UTC written ``-00:00`` (CAP 1.2 forbids ``Z``)."""
    utc = value.astimezone(UTC)
    if utc.microsecond and lost is not None:
        lost.append(loss(field, utc.isoformat(), "CAP times have whole seconds: the fraction is not written"))
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def _parse(data: bytes, source: str) -> ET.Element:
    """The document's root, parsed without DTDs, entities or external references."""
    try:
        root: ET.Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise InputError(
            source, [Problem("", "a DTD is refused (CAP needs none; it can hide entity expansion)")]
        ) from None
    except EntitiesForbidden as exc:
        raise InputError(source, [Problem("", "an entity declaration is refused", str(exc.name))]) from None
    except ExternalReferenceForbidden:
        raise InputError(source, [Problem("", "an external reference is refused")]) from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise InputError(source, [Problem(f"line {line} column {column}", f"not well-formed XML: {exc.msg}")]) from None
    except (ValueError, LookupError) as exc:  # an encoding declared that expat cannot read (multi-byte, unknown)
        raise InputError(source, [Problem("", f"cannot read the declared encoding: {exc}")]) from None
    return root
