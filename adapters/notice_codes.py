"""The tables of the notice format (:mod:`adapters.notice_json`): sex codes, the ISO 639-2 codes of spoken
languages, which notice field feeds which shared field, and why the others are not carried, either way.
"""

from __future__ import annotations

from broker.models import Sex

__all__ = [
    "CONSUMED",
    "EVENT",
    "PERSON",
    "SEX_IN",
    "SEX_OUT",
    "TEXT_FIELDS",
    "VICTIM",
    "WHY_LOST",
    "WHY_NOT",
    "spoken_language",
]

#: The notice's sex codes, and the shared values they stand for.
SEX_IN = {"F": Sex.FEMALE, "M": Sex.MALE, "U": Sex.UNKNOWN}
#: The notice's sex code of each shared value.
SEX_OUT = {v: k for k, v in SEX_IN.items()}

# ISO 639-2 (bibliographic and terminology) codes as the notices API writes them, and their ISO 639-1 tags.
_ISO639 = (
    "AFR af|AKA ak|ALB SQI sq|AMH am|ARA ar|ARM HYE hy|ASM as|AZE az|BAM bm|BAQ EUS eu|BEL be|BEN bn|BOS bs|"
    "BUL bg|BUR MYA my|CAT ca|CHI ZHO zh|CZE CES cs|DAN da|DUT NLD nl|ENG en|EST et|EWE ee|FIN fi|FRE FRA fr|"
    "FUL ff|GEO KAT ka|GER DEU de|GLE ga|GLG gl|GRE ELL el|GUJ gu|HAT ht|HAU ha|HEB he|HIN hi|HRV hr|HUN hu|"
    "IBO ig|ICE ISL is|IND id|ITA it|JAV jv|JPN ja|KAN kn|KAZ kk|KHM km|KIN rw|KIR ky|KON kg|KOR ko|KUR ku|"
    "LAO lo|LAV lv|LIN ln|LIT lt|LTZ lb|LUG lg|MAC MKD mk|MAL ml|MAR mr|MAY MSA ms|MLG mg|MLT mt|MON mn|NEP ne|"
    "NOR no|NYA ny|ORI or|ORM om|PAN pa|PER FAS fa|POL pl|POR pt|PUS ps|RUM RON ro|RUS ru|SIN si|SLO SLK sk|"
    "SLV sl|SND sd|SNA sn|SOM so|SOT st|SPA es|SRP sr|SUN su|SWA sw|SWE sv|TAM ta|TEL te|TGK tg|TGL tl|THA th|"
    "TIR ti|TSN tn|TUK tk|TUR tr|TWI tw|UKR uk|URD ur|UZB uz|VIE vi|WEL CYM cy|WOL wo|XHO xh|YOR yo|ZUL zu"
)
_SPOKEN = {code: entry.split()[-1] for entry in _ISO639.split("|") for code in entry.split()[:-1]}


def spoken_language(code: str) -> str | None:
    """The BCP 47 tag of an ISO 639-2 code as the notices API writes it (``"FRE"`` -> ``"fr"``), if known."""
    return _SPOKEN.get(code.upper())


_PERSON_FIELDS = ("forename", "name", "birth_name", "date_of_birth", "sex_id", "nationalities", "height")
#: Free-text fields of the person.
TEXT_FIELDS = ("distinguishing_marks", "place_of_birth")
#: The event (the disappearance): place, date and country, carried all three or not at all.
EVENT = ("place", "date_of_event", "country")
#: Notice field -> field of the victim in an alert (a yellow notice read as an alert).
VICTIM = {
    "forename": "given_names",
    "name": "family_names",
    "date_of_birth": "date_of_birth",
    "sex_id": "sex",
    "nationalities": "nationalities",
    "height": "height_cm",
    "distinguishing_marks": "distinguishing_marks",
}
#: Notice field -> field of the person in case information.
PERSON = {
    "forename": "given_names",
    "name": "family_names",
    "birth_name": "aliases",
    "date_of_birth": "date_of_birth",
    "sex_id": "sex",
    "nationalities": "nationalities",
    "place_of_birth": "place_of_birth",
    "distinguishing_marks": "description",
}
#: Why a notice field is not carried (inbound).
WHY_LOST = {
    "weight": "the shared schema has no weight",
    "eyes_colors_id": "the shared schema has no eye colour",
    "hairs_id": "the shared schema has no hair colour",
    "country_of_birth_id": "the shared schema has no country of birth",
    "father_forename": "the shared schema has no parents' names",
    "mother_forename": "the shared schema has no parents' names",
    "mother_name": "the shared schema has no parents' names",
    "_links": "links into the notices API are not carried",
    "_embedded": "images are not carried: a shared photo reference needs the image's SHA-256 digest",
    "birth_name": "a victim in an alert has no other names",
    "place_of_birth": "a victim in an alert has no place of birth",
    "height": "a person in case information has no height",
}
_READ = {*_PERSON_FIELDS, *TEXT_FIELDS, *EVENT, "entity_id", "notice_type", "arrest_warrants", "languages_spoken_ids"}
#: Fields read and either carried or reported where they are read.
CONSUMED = _READ - set(WHY_LOST)
#: Why a shared field has no place in a notice (outbound); any other: "the notice format has no field for it".
WHY_NOT = {
    "status": "a notice has no status: mind an Exercise or Test message",
    "sent_at": "a notice has no time of sending",
    "handling": "a notice has no handling code: keep the message's TLP and restrictions with the file",
    "issuer": "a notice does not name the authority that sent it",
    "alert_id": "a notice has no message identifier (its entity_id is the case id)",
    "info_id": "a notice has no message identifier (its entity_id is the case id)",
    "evaluation": "a notice has no 4x4 evaluation",
    "languages": "a notice does not say the language of its text",
    "headline": "a notice has no headline",
    "subject": "a notice has no subject line",
    "description": "a notice has no free-text description",
    "suspects": "a notice describes one person",
    "vehicles": "a notice has no vehicles",
    "clothing": "a notice has no clothing",
    "photo": "a notice links its images, it does not carry a reference and digest",
    "aliases": "a notice has one birth name, not aliases",
    "position": "a notice has no coordinates",
}
