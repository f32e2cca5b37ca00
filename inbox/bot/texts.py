"""What the first-line bot says, in Dutch and English, and how it names a moment in time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "welcome": "Welkom! Ik ben de digitale assistent. Stel uw vraag, of kies een onderwerp. "
        "Typ 'medewerker' om een collega te spreken.",
        "menu": "Waarmee kan ik u helpen? Kies een onderwerp:",
        "rephrase": "Sorry, dat begreep ik niet helemaal. Kunt u uw vraag anders stellen? "
        "Of kies een onderwerp:",
        "person": "Medewerker spreken",
        "handover": "Ik geef het gesprek door aan een collega; die reageert hier zo snel mogelijk.",
        "handover_closed": "Ik geef het gesprek door aan een collega. We zijn nu gesloten; "
        "{when} zijn we er weer en reageren we zo snel mogelijk.",
        "lead_intro": "Dan zet ik het even klaar voor een collega.",
        "ask_name": "Wat is uw naam?",
        "bad_name": "Mag ik uw naam? Bijvoorbeeld: Jan de Vries.",
        "ask_company": "Voor welk bedrijf neemt u contact op? (Typ 'geen' als dat niet zo is.)",
        "ask_contact": "Op welk e-mailadres of telefoonnummer kunnen we u bereiken?",
        "bad_contact": "Dat lijkt geen geldig e-mailadres of telefoonnummer. Probeer het nog "
        "eens, bijvoorbeeld naam@bedrijf.nl of 06 12345678.",
        "ask_question": "Waarmee kunnen we u helpen?",
        "lead_thanks": "Dank u wel, {name}.",
        "today": "vandaag",
        "tomorrow": "morgen",
        "at": "om",
    },
    "en": {
        "welcome": "Welcome! I am the digital assistant. Ask your question or pick a topic. "
        "Type 'human' to talk to a colleague.",
        "menu": "How can I help you? Pick a topic:",
        "rephrase": "Sorry, I did not quite get that. Could you ask it in another way? "
        "Or pick a topic:",
        "person": "Talk to a person",
        "handover": "I am passing the conversation to a colleague, who will answer here as "
        "soon as possible.",
        "handover_closed": "I am passing the conversation to a colleague. We are closed right "
        "now; we are back {when} and will answer as soon as possible.",
        "lead_intro": "Let me get this ready for a colleague.",
        "ask_name": "What is your name?",
        "bad_name": "May I have your name? For example: Jane Smith.",
        "ask_company": "Which company are you contacting us for? (Type 'none' if you are not.)",
        "ask_contact": "At which e-mail address or phone number can we reach you?",
        "bad_contact": "That does not look like a valid e-mail address or phone number. Please "
        "try again, for example name@company.com or +31 6 12345678.",
        "ask_question": "How can we help you?",
        "lead_thanks": "Thank you, {name}.",
        "today": "today",
        "tomorrow": "tomorrow",
        "at": "at",
    },
}
DAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "nl": (
        "januari februari maart april mei juni juli augustus september oktober november december"
    ).split(),
    "en": (
        "January February March April May June July August September October November December"
    ).split(),
}


def say(language: str, key: str, **values: str) -> str:
    text = TEXTS.get(language, TEXTS["nl"])[key]
    return text.format(**values) if values else text


def when(moment: datetime, now: datetime, tz: ZoneInfo, language: str) -> str:
    """'morgen om 08:30', 'maandag 24 november om 08:30' (in the calendar's time zone)."""
    lang = language if language in TEXTS else "nl"
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    clock = f"{say(lang, 'at')} {local:%H:%M}"
    days = (local.date() - today).days
    if days == 0:
        return f"{say(lang, 'today')} {clock}"
    if days == 1:
        return f"{say(lang, 'tomorrow')} {clock}"
    day = DAYS[lang][local.weekday()]
    month = MONTHS[lang][local.month - 1]
    return f"{day} {local.day} {month} {clock}"
