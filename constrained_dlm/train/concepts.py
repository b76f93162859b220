"""Training data: concepts (a kind of value with its key names, schema, generator and phrasings),
the nested shapes built from them, and the two disjoint key pools (train / held out).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Callable

from .words import (
    CATEGORIES,
    CITIES,
    COLORS,
    COMPANIES,
    COUNTRIES,
    EVENTS,
    FIRST,
    HOBBIES,
    JOBS,
    LAST,
    NOTES,
    PAYMENT_SETS,
    PRIORITY_SETS,
    PRODUCTS,
    SIZE_SETS,
    SKILLS,
    STATUS_SETS,
    STREETS,
    UNITS,
    email_address,
    money,
    person_name,
    phone_number,
    proper_noun,
    random_date,
)

# --- concepts: a value kind with its key names, schema, generator and phrasings ---------------------

@dataclass
class Concept:
    name: str
    train_keys: list[str]
    heldout_keys: list[str]
    schema: Callable[[random.Random], dict]
    value: Callable[[random.Random, dict], Any]
    phrases: list[str]                 # "{S}" subject, "{v}" value, "{L}" label
    labels: list[str]                  # human labels for "label: value" forms
    show: Callable[[Any], str] = str   # value -> text in the description


def _s(**kw):
    return lambda rng: {"type": "string", **kw}


def _int(lo, hi):
    def f(rng):
        d = {"type": "integer"}
        if rng.random() < 0.8:
            d["minimum"] = lo
        if rng.random() < 0.6:
            d["maximum"] = hi
        return d
    return f


def _enum_schema(sets):
    def f(rng):
        vals = list(rng.choice(sets))
        return {"enum": vals} if rng.random() < 0.5 else {"type": "string", "enum": vals}
    return f


def _pick_enum(rng, schema):
    return rng.choice(schema["enum"])


def _clamp_int(rng, schema, lo, hi):
    lo = max(lo, schema.get("minimum", lo))
    hi = min(hi, schema.get("maximum", hi))
    return rng.randint(lo, hi)


def _str_array(pool, kmax=4):
    def schema(rng):
        d = {"type": "array", "items": {"type": "string"}}
        if rng.random() < 0.3:
            d["maxItems"] = kmax
        if rng.random() < 0.2:
            d["minItems"] = 1
        return d

    def value(rng, schema):
        k = rng.randint(1, min(kmax, schema.get("maxItems", kmax)))
        return rng.sample(pool, k)
    return schema, value


def _num_array(lo, hi, integer=False):
    def schema(rng):
        return {"type": "array", "items": {"type": "integer" if integer else "number"}}

    def value(rng, schema):
        k = rng.randint(1, 5)
        if integer:
            return [rng.randint(lo, hi) for _ in range(k)]
        return [round(rng.uniform(lo, hi), 1) for _ in range(k)]
    return schema, value


def humanise(key: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).replace("_", " ").lower()


def list_text(v):
    v = [str(x) for x in v]
    if not v:
        return "none"
    if len(v) == 1:
        return v[0]
    return ", ".join(v[:-1]) + " and " + v[-1]


def _job_schema(rng):
    """A free string, or (as in the README's person schema) an enum of a few jobs."""
    if rng.random() < 0.3:
        return {"enum": rng.sample(JOBS, rng.randint(3, 5))}
    return {"type": "string"}


_tags_s, _tags_v = _str_array(HOBBIES)
_skills_s, _skills_v = _str_array(SKILLS)
_kw_s, _kw_v = _str_array(CATEGORIES + COLORS, 3)
_scores_s, _scores_v = _num_array(0, 100, integer=True)
_read_s, _read_v = _num_array(-10, 40)

CONCEPTS: dict[str, Concept] = {c.name: c for c in [
    Concept("name", ["name", "full_name", "person", "customerName", "fullName", "person_name",
                     "customer_name", "contact_name", "user", "author"],
            ["client_full_name", "individual", "memberName", "patron"],
            _s(), lambda r, s: person_name(r),
            ["This is about {v}.", "{v} is the person in question.", "The name is {v}.",
             "Meet {v}.", "{v} contacted us."], ["Name", "Full name", "Customer", "Person"]),
    Concept("first_name", ["first_name", "firstName", "given_name", "forename"], ["givenname", "first"],
            _s(), lambda r, s: proper_noun(r, FIRST),
            ["Their first name is {v}.", "{v} is the first name."], ["First name", "Given name"]),
    Concept("last_name", ["last_name", "lastName", "surname", "family_name"], ["familyname", "last"],
            _s(), lambda r, s: proper_noun(r, LAST),
            ["The surname is {v}.", "Last name {v}."], ["Last name", "Surname"]),
    Concept("city", ["city", "town", "location", "cityName", "home_city", "city_name"],
            ["municipality", "hometown", "locality"],
            _s(), lambda r, s: proper_noun(r, CITIES),
            ["{S} lives in {v}.", "{S} is based in {v}.", "They are from {v}.", "Location: {v}.",
             "{S} moved to {v} last year."], ["City", "Town", "Location"]),
    Concept("country", ["country", "nation", "country_name", "countryCode_name", "home_country"],
            ["countryOfOrigin", "homeland"],
            _s(), lambda r, s: r.choice(COUNTRIES),
            ["{S} is from {v}.", "The country is {v}.", "{S} lives in {v}."], ["Country", "Nation"]),
    Concept("age", ["age", "years_old", "ageYears", "age_years"], ["person_age", "yearsOfAge"],
            _int(0, 120), lambda r, s: _clamp_int(r, s, 18, 90),
            ["{S} is {v} years old.", "{S}, aged {v}.", "Age: {v}.", "{S} turned {v} recently."],
            ["Age", "Years old"]),
    Concept("email", ["email", "emailAddress", "contact_email", "mail", "email_address"],
            ["e_mail", "mailbox", "electronicMail"],
            _s(format="email"), lambda r, s: email_address(r),
            ["{S} can be reached at {v}.", "Email: {v}.", "Their email is {v}.", "Write to {v}."],
            ["Email", "E-mail", "Contact email"]),
    Concept("phone", ["phone", "phoneNumber", "phone_number", "mobile", "tel"], ["telephone", "cellNumber"],
            _s(), lambda r, s: phone_number(r),
            ["Call {S} at {v}.", "Phone: {v}.", "Their number is {v}."], ["Phone", "Mobile"]),
    Concept("birth_date", ["birth_date", "dob", "birthday", "dateOfBirth", "born"],
            ["natal_day", "birthDay_iso"],
            _s(format="date"), lambda r, s: random_date(r),
            ["{S} was born on {v}.", "Born {v}.", "Date of birth: {v}."], ["Date of birth", "Born"]),
    Concept("date", ["date", "start_date", "createdAt", "signup_date", "order_date", "due_date",
                     "eventDate", "when"],
            ["occurredOn", "date_of_event", "scheduled_for"],
            _s(format="date"), lambda r, s: random_date(r),
            ["It happened on {v}.", "The date is {v}.", "Scheduled for {v}.", "On {v}."],
            ["Date", "When"]),
    Concept("company", ["company", "employer", "organization", "org", "companyName", "workplace"],
            ["firm", "business_entity"],
            _s(), lambda r, s: proper_noun(r, COMPANIES),
            ["{S} works at {v}.", "{S} is employed by {v}.", "Company: {v}."], ["Company", "Employer"]),
    Concept("job", ["title", "job_title", "role", "position", "jobTitle", "profession"],
            ["occupation", "vocation"],
            _job_schema, lambda r, s: r.choice(s["enum"] if "enum" in s else JOBS),
            ["{S} works as a {v}.", "{S} is a {v}.", "Job: {v}."], ["Job title", "Role"]),
    Concept("price", ["price", "amount", "cost", "total", "unit_price", "totalPrice"],
            ["charge", "fee_amount"],
            lambda r: {"type": "number", "minimum": 0} if r.random() < 0.6 else {"type": "number"},
            lambda r, s: money(r),
            ["It costs {V}.", "The total is {V}.", "Price: {V}.", "They paid {V}."], ["Price", "Amount"],
            ),
    Concept("quantity", ["quantity", "qty", "count", "num_items", "units"], ["pieces", "howMany"],
            _int(1, 100), lambda r, s: _clamp_int(r, s, 1, 20),
            ["Quantity: {v}.", "{v} of them were ordered.", "They want {v}."], ["Quantity", "Qty"]),
    Concept("status", ["status", "state", "orderStatus", "account_status"], ["standing", "condition"],
            _enum_schema(STATUS_SETS), _pick_enum,
            ["The status is {v}.", "Currently {v}.", "It is marked {v}."], ["Status", "State"]),
    Concept("priority", ["priority", "urgency", "importance"], ["severity_level"],
            _enum_schema(PRIORITY_SETS), _pick_enum,
            ["Priority is {v}.", "This is {v} priority."], ["Priority"]),
    Concept("size", ["size", "shirt_size", "sizeCode"], ["fit"],
            _enum_schema(SIZE_SETS), _pick_enum,
            ["Size {v}.", "They need size {v}."], ["Size"]),
    Concept("payment", ["payment_method", "paymentType", "pay_with"], ["tender"],
            _enum_schema(PAYMENT_SETS), _pick_enum,
            ["Paid by {v}.", "Payment method: {v}."], ["Payment"]),
    Concept("active", ["is_active", "active", "enabled", "isActive"], ["has_consented", "optedIn"],
            lambda r: {"type": "boolean"}, lambda r, s: r.random() < 0.5,
            ["BOOL:The account is active.|The account is not active.",
             "BOOL:{S} is currently active.|{S} is no longer active."], ["Active"]),
    Concept("verified", ["verified", "is_verified", "emailVerified"], ["confirmed_identity"],
            lambda r: {"type": "boolean"}, lambda r, s: r.random() < 0.5,
            ["BOOL:{S} has been verified.|{S} has not been verified yet."], ["Verified"]),
    Concept("subscribed", ["subscribed", "newsletter", "isMember", "member"], ["enrolled"],
            lambda r: {"type": "boolean"}, lambda r, s: r.random() < 0.5,
            ["BOOL:{S} is a member.|{S} is not a member.",
             "BOOL:{S} signed up for the newsletter.|{S} declined the newsletter."], ["Member"]),
    Concept("paid", ["paid", "is_paid", "settled"], ["cleared"],
            lambda r: {"type": "boolean"}, lambda r, s: r.random() < 0.5,
            ["BOOL:It has been paid.|It is still unpaid."], ["Paid"]),
    Concept("product", ["product", "item", "product_name", "productName", "article"],
            ["merchandise", "goods_name"],
            _s(), lambda r, s: r.choice(PRODUCTS),
            ["The item is a {v}.", "They bought a {v}.", "Product: {v}."], ["Product", "Item"]),
    Concept("color", ["color", "colour", "shade"], ["hue"],
            lambda r: {"enum": list(COLORS)} if r.random() < 0.5 else {"type": "string"},
            lambda r, s: r.choice(COLORS),
            ["It is {v}.", "Color: {v}.", "The {v} one."], ["Color", "Colour"]),
    Concept("category", ["category", "department", "section"], ["genre_group"],
            lambda r: {"enum": list(CATEGORIES)} if r.random() < 0.5 else {"type": "string"},
            lambda r, s: r.choice(CATEGORIES),
            ["It belongs in {v}.", "Category: {v}."], ["Category"]),
    Concept("rating", ["rating", "stars", "score"], ["grade_value"],
            lambda r: r.choice([{"type": "integer", "minimum": 1, "maximum": 5},
                                {"type": "number", "minimum": 0, "maximum": 5}]),
            lambda r, s: r.randint(1, 5) if s["type"] == "integer" else round(r.uniform(0, 5), 1),
            ["Rated {v} out of 5.", "Rating: {v}.", "They gave it {v} stars."], ["Rating"]),
    Concept("year", ["year", "founded", "release_year", "yearBuilt"], ["vintage"],
            _int(1900, 2030), lambda r, s: _clamp_int(r, s, 1950, 2025),
            ["Back in {v}.", "The year was {v}.", "Year: {v}."], ["Year"]),
    Concept("temperature", ["temperature", "temp", "degrees"], ["thermal_reading"],
            lambda r: {"type": "number"}, lambda r, s: round(r.uniform(-15, 40), 1),
            ["It was {v} degrees.", "Temperature: {v}."], ["Temperature"]),
    Concept("unit", ["unit", "units_of_measure", "scale"], ["measure_system"],
            lambda r: {"enum": list(UNITS)}, _pick_enum,
            ["Measured in {v}.", "Unit: {v}."], ["Unit"]),
    Concept("id", ["id", "order_id", "userId", "customer_id", "ticket_number", "invoiceNo"],
            ["record_number", "reference_no"],
            lambda r: {"type": "integer", "minimum": 1}, lambda r, s: r.randint(1, 99999),
            ["Reference #{v}.", "ID {v}.", "Order number {v}."], ["ID", "Number"]),
    Concept("street", ["street", "address_line", "street_address", "line1"], ["thoroughfare"],
            _s(), lambda r, s: f"{r.randint(1, 250)} {r.choice(STREETS)}",
            ["The street address is {v}.", "They live at {v}."], ["Street"]),
    Concept("zip", ["zip", "zip_code", "postal_code", "postcode"], ["mail_code"],
            _s(), lambda r, s: f"{r.randint(10000, 99999)}",
            ["ZIP {v}.", "Postal code {v}."], ["ZIP", "Postcode"]),
    Concept("note", ["note", "notes", "comment", "remarks", "instructions"], ["annotation"],
            _s(), lambda r, s: r.choice(NOTES),
            ["Note: {v}.", "They added: {v}.", "Comment: {v}."], ["Note", "Comment"]),
    Concept("event", ["event", "event_name", "meeting", "occasion", "activity"], ["happening"],
            _s(), lambda r, s: r.choice(EVENTS),
            ["The event is a {v}.", "They are planning a {v}.", "Event: {v}."], ["Event"]),
    Concept("attendees", ["attendees", "guests", "participants", "headcount"], ["turnout"],
            _int(0, 10000), lambda r, s: _clamp_int(r, s, 2, 300),
            ["{v} people are expected.", "Attendees: {v}."], ["Attendees", "Guests"]),
    Concept("hobbies", ["hobbies", "interests", "tags", "activities", "likes"], ["pastimes", "passions"],
            _tags_s, _tags_v, ["{S} enjoys {V}.", "Hobbies: {V}.", "{S} likes {V}."], ["Hobbies"]),
    Concept("skills", ["skills", "languages", "expertise", "competencies"], ["abilities"],
            _skills_s, _skills_v, ["{S} knows {V}.", "Skills: {V}."], ["Skills"]),
    Concept("keywords", ["keywords", "labels", "tag_list", "categories"], ["facets"],
            _kw_s, _kw_v, ["Tagged {V}.", "Keywords: {V}."], ["Keywords", "Tags"]),
    Concept("scores", ["scores", "grades", "results", "points"], ["marks_list"],
            _scores_s, _scores_v, ["Scores were {V}.", "They scored {V}."], ["Scores"]),
    Concept("readings", ["readings", "measurements", "values", "samples"], ["observations"],
            _read_s, _read_v, ["Readings: {V}.", "The sensor recorded {V}."], ["Readings"]),
]}


# nested objects: (train keys, heldout keys, member concepts, phrasing of the whole)
NESTED = {
    "address": (["address", "home_address", "addr", "mailing_address", "shipping"], ["residence", "abode"],
                ["street", "city", "zip", "country"]),
    "contact": (["contact", "contact_info", "contactDetails", "reach"], ["correspondence"],
                ["email", "phone"]),
    "customer": (["customer", "owner", "buyer", "client", "employee"], ["account_holder"],
                 ["name", "email", "age"]),
    "location": (["venue", "place", "where_at"], ["site_info"], ["city", "country"]),
    "product": (["product_info", "merch", "sku_details"], ["catalog_entry"],
                ["product", "price", "color"]),
}
ARRAY_OBJ = {
    "items": (["items", "line_items", "products", "orders", "cart"], ["entries", "basket_rows"],
              ["product", "quantity", "price"]),
    "people": (["people", "members", "attendees_list", "contacts", "team"], ["roster", "cohort"],
               ["name", "age", "city"]),
    "events": (["events", "schedule", "appointments"], ["agenda_rows"], ["event", "date"]),
}

DOMAINS_CONCEPTS = {
    "person": ["name", "first_name", "last_name", "age", "email", "phone", "city", "country",
               "birth_date", "company", "job", "active", "verified", "subscribed", "hobbies",
               "skills", "note", "id", "scores"],
    "order": ["id", "name", "date", "price", "quantity", "status", "priority", "paid", "payment",
              "product", "note", "email", "size", "color"],
    "product": ["product", "price", "color", "category", "rating", "quantity", "keywords",
                "year", "size", "active", "id"],
    "event": ["event", "date", "city", "country", "attendees", "priority", "status", "note",
              "name", "year"],
    "weather": ["city", "country", "date", "temperature", "unit", "readings", "note"],
}
DOMAIN_NESTED = {"person": ["address", "contact"], "order": ["customer", "address", "items"],
                 "product": ["product"], "event": ["location", "people", "events"],
                 "weather": ["location"]}
ENTITY = {"person": ["person", "customer", "user", "contact", "employee", "profile"],
          "order": ["order", "purchase", "invoice", "booking"],
          "product": ["product", "listing", "item"],
          "event": ["event", "meeting", "appointment"],
          "weather": ["weather report", "observation", "reading"]}
INSTRUCTIONS = ["Extract the {e} as JSON.", "Extract the {e} details as JSON.",
                "Return the {e} as JSON.", "Convert this {e} description to JSON.",
                "Parse the following into JSON.", "Fill in the {e} record.", "JSON for this {e}:"]

HELDOUT_SALT = 0x5EED_0DD5


def _all_keys(split: str) -> set[str]:
    keys = set()
    for c in CONCEPTS.values():
        keys |= set(c.train_keys if split == "train" else c.heldout_keys)
    for table in (NESTED, ARRAY_OBJ):
        for tr, ho, _ in table.values():
            keys |= set(tr if split == "train" else ho)
    return keys


def key_pool(split: str) -> set[str]:
    """All property names the split may use; the two pools are disjoint."""
    return _all_keys(split)
