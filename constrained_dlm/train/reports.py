"""Filled document templates for training: short business documents whose text holes hold
plain English that agrees with the fields beside it.

The embedded model had never seen a sentence: ``cdlm fill examples/report.tpl`` wrote notes
like "# order in the line line of the line". Each generator here draws one document (a
template in the text form of :class:`~constrained_dlm.specs.document.Document`, and the same
text filled in), the way a pipeline fills a template per record: fixed lines that carry the
record's data, typed holes (choice, int, regex) and one or two text holes whose sentence is
built from the values of the others (a delayed order's note says it is late, by how much).
Sentences stay under the text holes' budget (about ten words with the embedded tokenizer).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Iterator

from .words import CITIES, FIRST, LAST, novel_word

ITEMS = ["a lamp", "two lamps", "a kettle", "a rug", "a desk", "three mugs", "a bike",
         "a chair", "a phone case", "two books", "a coat", "a tent", "a printer", "a clock",
         "four plates", "a mirror", "a camera", "a backpack", "a blender", "a pair of boots"]
PRODUCTS = ["the app", "the website", "the printer", "the router", "the billing page",
            "the login page", "the mobile app", "the dashboard", "the search", "the checkout"]
PROBLEMS = ["cannot log in", "sees an error on save", "gets logged out", "cannot pay",
            "sees a blank page", "waits a minute per page", "cannot upload files",
            "gets no emails", "sees the wrong prices", "cannot reset the password"]
SERVICES = ["the API", "the database", "the mail server", "the web shop", "payments",
            "the search index", "the file store", "the login service"]
CAUSES = ["a full disk", "an expired certificate", "a bad deploy", "a network outage",
          "a power cut", "a config error", "too much traffic", "a failed update"]
TOPICS = ["the budget", "the launch date", "hiring", "the new office", "the roadmap",
          "the price change", "the summer plan", "the tender"]

_TEXT = "text max_tokens={} multiline=false"      # 24 or 32 positions, drawn per document


def _name(rng) -> tuple[str, str]:
    first = novel_word(rng) if rng.random() < 0.3 else rng.choice(FIRST)
    return first, f"{first} {rng.choice(LAST)}"


def _label(rng, *options: str) -> str:
    return rng.choice(options)


def _shipping(rng) -> tuple[str, dict]:
    first, full = _name(rng)
    items = rng.choice(ITEMS)
    status = rng.choice(["shipped", "delayed", "lost"])
    late = 0 if status == "shipped" else rng.randint(1, 14)
    mood = {"shipped": rng.randint(4, 5), "delayed": rng.randint(2, 3), "lost": rng.randint(1, 2)}[status]
    it = "it is" if items.startswith("a ") else "they are"
    note = rng.choice({
        "shipped": [f"Your {items[2:] if items.startswith('a ') else items} shipped today.",
                    f"Good news, {first}: your order is on its way.",
                    f"Thanks, {first}! Your order left our store today.",
                    f"Your order is on the way and {it} well packed."],
        "delayed": [f"Sorry, {first}: your order is {late} days late.",
                    f"We are sorry for the delay of {late} days.",
                    "Your order is late, but it will ship this week.",
                    f"Sorry for the wait, {first}. It ships in {late} days."],
        "lost": [f"Sorry, {first}: your parcel was lost. A new one ships.",
                 "We lost your parcel and will refund you in full.",
                 f"Your parcel is lost, {first}. A new one ships today.",
                 "We are sorry: the parcel was lost on the way."]}[status])
    tpl = (f"{_label(rng, 'Shipping report', 'Order update', 'Delivery note')} for order "
           f"{rng.randint(1000, 9999)} ({full})\n"
           f"{_label(rng, 'Ordered', 'Items')}: {items}\n"
           "Status: {{ status: choice [\"shipped\", \"delayed\", \"lost\"] }}\n"
           "Days late: {{ days_late: int min=0 max=30 }}\n")
    values = {"status": status, "days_late": str(late)}
    if rng.random() < 0.6:
        tpl += "Tracking code: {{ tracking: regex \"[A-Z]{2}[0-9]{6}\" }}\n"
        values["tracking"] = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)) + \
            "".join(rng.choice("0123456789") for _ in range(6))
    if rng.random() < 0.6:
        tpl += "Customer mood (1-5): {{ mood: int min=1 max=5 }}\n"
        values["mood"] = str(mood)
    tpl += (f"{_label(rng, 'Note to the customer', 'Message', 'Note', 'Comment')}: "
            "{{ note: " + _TEXT + " }}\n")
    values["note"] = note
    return tpl, values


def _ticket(rng) -> tuple[str, dict]:
    first, full = _name(rng)
    product, problem = rng.choice(PRODUCTS), rng.choice(PROBLEMS)
    prio = rng.choice(["low", "normal", "urgent"])
    hours = rng.randint(1, 40)
    summary = rng.choice([f"{first} {problem} in {product}.",
                          f"The user {problem} since the update.",
                          f"{first} reports that {product} is broken.",
                          f"Since Monday {first} {problem}."])
    reply = rng.choice({"low": ["We will look at it next week.", "Thanks, we added it to the list."],
                        "normal": ["We are on it and will reply in a day.",
                                   f"Thanks, {first}. We will fix it soon."],
                        "urgent": ["We are fixing it right now.",
                                   f"Sorry, {first}. A fix comes within the hour."]}[prio])
    tpl = (f"{_label(rng, 'Ticket', 'Support ticket', 'Issue')} from {full}\n"
           "Priority: {{ priority: choice [\"low\", \"normal\", \"urgent\"] }}\n"
           "Estimate (hours): {{ hours: int min=1 max=40 }}\n"
           f"{_label(rng, 'Summary', 'Problem')}: " "{{ summary: " + _TEXT + " }}\n")
    values = {"priority": prio, "hours": str(hours), "summary": summary}
    if rng.random() < 0.5:
        tpl += f"{_label(rng, 'Reply', 'Answer')}: " "{{ reply: " + _TEXT + " }}\n"
        values["reply"] = reply
    return tpl, values


def _incident(rng) -> tuple[str, dict]:
    service, cause = rng.choice(SERVICES), rng.choice(CAUSES)
    sev = rng.choice(["minor", "major", "critical"])
    minutes = rng.randint(2, 240)
    text = rng.choice([f"{service[0].upper() + service[1:]} was down for {minutes} minutes.",
                       f"It was {cause}; it is fixed now.",
                       f"{cause[0].upper() + cause[1:]} took down {service}.",
                       f"Users could not reach {service} for {minutes} minutes."])
    tpl = (f"Incident report: {service} ({rng.choice(CITIES)})\n"
           "Severity: {{ severity: choice [\"minor\", \"major\", \"critical\"] }}\n"
           "Minutes down: {{ minutes: int min=1 max=600 }}\n"
           f"{_label(rng, 'What happened', 'Summary', 'Cause')}: " "{{ summary: " + _TEXT + " }}\n")
    return tpl, {"severity": sev, "minutes": str(minutes), "summary": text}


def _meeting(rng) -> tuple[str, dict]:
    topic = rng.choice(TOPICS)
    people = rng.randint(2, 12)
    first, _ = _name(rng)
    decision = rng.choice([f"We agreed on {topic} and meet again next week.",
                           f"{first} will write up {topic} by Friday.",
                           f"No decision on {topic} yet; we need more data.",
                           f"The team agreed to move {topic} to May."])
    tpl = (f"Meeting notes: {topic}\n"
           "Date: {{ date: regex \"2026-[01][0-9]-[0-3][0-9]\" }}\n"
           "People: {{ people: int min=1 max=50 }}\n"
           f"{_label(rng, 'Decision', 'Outcome', 'Next steps')}: " "{{ decision: " + _TEXT + " }}\n")
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return tpl, {"date": date, "people": str(people), "decision": decision}


def _review(rng) -> tuple[str, dict]:
    items = rng.choice(ITEMS)
    thing = items[2:] if items.startswith("a ") else items
    stars = rng.randint(1, 5)
    first, full = _name(rng)
    verdict = rng.choice(
        [f"Great {thing}, I would buy it again.", f"I love this {thing}; it works well.",
         f"The {thing} is fine and came fast."] if stars >= 4 else
        [f"The {thing} is okay, but the price is high.", "It works, but it came late."]
        if stars == 3 else
        [f"The {thing} broke after a week.", f"Poor quality; I sent the {thing} back."])
    tpl = (f"Review by {full} of {items}\n"
           "Stars (1-5): {{ stars: int min=1 max=5 }}\n"
           f"{_label(rng, 'Verdict', 'Review', 'Comment')}: " "{{ verdict: " + _TEXT + " }}\n")
    return tpl, {"stars": str(stars), "verdict": verdict}


KINDS: list[Callable] = [_shipping, _ticket, _incident, _meeting, _review]
_HOLE = re.compile(r"\{\{\s*(\w+)\s*:.*?\}\}")


def report_documents(n: int, seed: int, split: str = "train") -> Iterator[dict]:
    """``n`` dicts {template, text}: a document template in the text form, and the same
    document with every hole filled."""
    rng = random.Random(f"reports/{seed}/{split}")
    for _ in range(n):
        tpl, values = rng.choice(KINDS)(rng)
        tpl = tpl.replace("max_tokens={}", f"max_tokens={rng.choice((24, 32))}")
        yield {"template": tpl, "text": _HOLE.sub(lambda m: values[m.group(1)], tpl)}
