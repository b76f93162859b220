"""Training data, bottom rung: word lists and made-up values (names, emails, dates, money).

The lists give values a model can guess; :func:`novel_word` gives values it can only copy from the
prompt. Everything draws from a caller's ``random.Random``, so the same seed gives the same data.
"""

from __future__ import annotations

import random

FIRST = ("Alice Bob Carol David Emma Frank Grace Henry Irene Jack Karen Liam Maria Noah Olivia "
         "Paul Quinn Rosa Samuel Tara Umar Vera Walter Xena Yusuf Zoe Aiko Bruno Chloe Diego "
         "Elena Farid Greta Hiro Ingrid Jonas Kofi Lena Mateo Nadia Omar Priya Ravi Sofia "
         "Tomas Ana Ben Clara Daniel Eva Felix Hannah Ivan Julia Kai Lucas Mia Nina Oscar").split()
LAST = ("Smith Johnson Garcia Miller Davis Lopez Wilson Anderson Thomas Moore Martin Lee Clark "
        "Lewis Walker Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell "
        "Roberts Carter Phillips Evans Turner Torres Parker Collins Edwards Stewart Morris Murphy "
        "Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kim Chen Patel Nguyen Silva Rossi "
        "Muller Schmidt Dubois Novak Tanaka Sato Okafor Haddad Kowalski Larsen").split()
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Prague", "Oslo",
          "Dublin", "Boston", "Chicago", "Denver", "Seattle", "Austin", "Toronto", "Montreal",
          "Sydney", "Melbourne", "Tokyo", "Osaka", "Seoul", "Mumbai", "Delhi", "Cairo", "Lagos",
          "Nairobi", "Lima", "Bogota", "Santiago", "Mexico City", "New York", "San Francisco",
          "Los Angeles", "Amsterdam", "Brussels", "Zurich", "Geneva", "Munich", "Hamburg",
          "Warsaw", "Athens", "Istanbul", "Dubai", "Singapore", "Bangkok", "Manila", "Auckland",
          "Springfield", "Riverside", "Portland", "Phoenix", "Atlanta", "Miami", "Helsinki"]
COUNTRIES = ["France", "Germany", "Spain", "Italy", "Portugal", "Austria", "Norway", "Ireland",
             "United States", "Canada", "Australia", "Japan", "South Korea", "India", "Egypt",
             "Nigeria", "Kenya", "Peru", "Colombia", "Chile", "Mexico", "Netherlands", "Belgium",
             "Switzerland", "Poland", "Greece", "Turkey", "Brazil", "Argentina", "Sweden",
             "Finland", "Denmark", "New Zealand", "Singapore", "Thailand", "Vietnam", "China",
             "United Kingdom", "Czech Republic", "Morocco"]
STREETS = ["Main Street", "Oak Avenue", "Maple Road", "High Street", "Park Lane", "Elm Street",
           "Church Road", "Station Road", "Mill Lane", "Cedar Drive", "Lake View", "King Street",
           "Queen Street", "River Road", "Hill Street", "Pine Court", "Market Square"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Wayne Enterprises",
             "Hooli", "Vandelay Imports", "Soylent", "Cyberdyne", "Blue Harbor", "Northwind",
             "Contoso", "Fabrikam", "Tailspin Toys", "Bright Path", "Green Leaf Foods", "Orbit Systems",
             "Summit Bank", "Redwood Health"]
JOBS = ["engineer", "teacher", "nurse", "designer", "accountant", "chef", "pilot", "lawyer",
        "data scientist", "architect", "pharmacist", "mechanic", "journalist", "photographer",
        "sales manager", "software developer", "electrician", "librarian", "dentist", "barista"]
PRODUCTS = ["laptop", "phone case", "desk lamp", "coffee mug", "backpack", "headphones", "keyboard",
            "monitor", "water bottle", "notebook", "running shoes", "umbrella", "camera", "tablet",
            "printer", "chair", "wall clock", "t-shirt", "sunglasses", "blender", "toaster", "kettle"]
COLORS = ["red", "blue", "green", "black", "white", "yellow", "purple", "orange", "grey", "pink"]
CATEGORIES = ["electronics", "clothing", "home", "garden", "sports", "books", "toys", "food",
              "beauty", "office"]
HOBBIES = ["chess", "hiking", "cooking", "reading", "painting", "cycling", "swimming", "gardening",
           "photography", "running", "music", "travel", "yoga", "fishing", "gaming", "dancing",
           "knitting", "climbing", "tennis", "baking"]
SKILLS = ["python", "sql", "java", "excel", "design", "writing", "marketing", "sales", "rust",
          "statistics", "leadership", "negotiation", "accounting", "spanish", "french"]
EVENTS = ["team meeting", "product launch", "birthday party", "conference", "workshop", "concert",
          "job interview", "dentist appointment", "wedding", "board review", "hackathon", "webinar"]
NOTES = ["call back tomorrow", "urgent", "gift wrap please", "leave at the door", "needs review",
         "first order", "returning customer", "fragile", "deliver after 5pm", "no notes",
         "prefers email", "VIP client"]
DOMAINS = ["example.com", "mail.com", "acme.org", "corp.net", "school.edu", "inbox.io", "web.de"]
UNITS = ["celsius", "fahrenheit", "kelvin"]
STATUS_SETS = [["active", "inactive", "pending"], ["open", "closed", "in_progress"],
               ["shipped", "delivered", "processing", "cancelled"], ["approved", "rejected", "pending"],
               ["draft", "published", "archived"]]
PRIORITY_SETS = [["low", "medium", "high"], ["low", "normal", "urgent"], ["p1", "p2", "p3"]]
SIZE_SETS = [["small", "medium", "large"], ["S", "M", "L", "XL"]]
PAYMENT_SETS = [["card", "cash", "paypal"], ["credit_card", "bank_transfer", "invoice"]]


def random_date(rng: random.Random) -> str:
    return f"{rng.randint(1950, 2030):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


NOVEL_P = 0.4      # share of names, cities and companies made up on the spot

# syllable parts of made-up words: clusters and digraphs too, so that made-up words split into
# tokens the way real names do ("Lovelace", "Dijkstra", "Liskov"), not only as "Varoki"
_ONSETS = ("b c d f g h j k l m n p r s t v w z bl br ch cl cr dr fl fr gl gr kl kr ph pl pr sch "
           "sh sk sl sm sn sp st str th tr tw w y z").split() + [""]
_VOWELS = "a e i o u a e i o u ai au ea ee ie oa oo ou y".split()
_CODAS = "n r s l m t k ck ng nd nt rd rk rt st sk ss ll x v tz ff".split()


def novel_word(rng) -> str:
    """A made-up proper noun ("Varoki", "Brenstock"): a value no list holds, so the only way to
    get it right is to copy it from the prompt. Without these, a model scores well by guessing
    from the lists and never learns to copy (v2 wrote a list city whatever the prompt said)."""
    if rng.random() < 0.4:                       # the plain consonant-vowel shape
        cons, vow = "bdfgklmnprstvz", "aeiou"
        word = "".join(rng.choice(cons) + rng.choice(vow) for _ in range(rng.randint(2, 3)))
        if rng.random() < 0.5:
            word += rng.choice("nrsl")
        return word.capitalize()
    n = rng.choice((1, 2, 2, 2, 3))
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS)
                   + (rng.choice(_CODAS) if rng.random() < (0.6 if k == n - 1 else 0.25) else "")
                   for k in range(n))
    return word.capitalize() if len(word) > 2 else word.capitalize() + "n"


def token_word(rng, pieces: list[str]) -> str:
    """A made-up name glued from 1-3 random pieces of the tokenizer's vocabulary ("Adavelce"):
    every token, however rare, then appears as a value to copy. v6 copied made-up names of
    common syllables but wrote "Sto" for "Ada", a token it had rarely had to write."""
    return "".join(rng.choice(pieces) for _ in range(rng.choice((1, 1, 2, 2, 3)))).capitalize()


def proper_noun(rng, pool) -> str:
    return novel_word(rng) if rng.random() < NOVEL_P else rng.choice(pool)


def person_name(rng):
    return f"{proper_noun(rng, FIRST)} {proper_noun(rng, LAST)}"


def email_address(rng):
    f, l = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    local = rng.choice([f"{f}.{l}", f"{f}{rng.randint(1, 99)}", f"{f[0]}{l}", f"{f}_{l}"])
    return f"{local}@{rng.choice(DOMAINS)}"


def phone_number(rng):
    return rng.choice([f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                       f"+1 {rng.randint(200, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                       f"0{rng.randint(100, 999)} {rng.randint(100000, 999999)}"])


def money(rng, lo=1, hi=500):
    return round(rng.uniform(lo, hi), rng.choice([0, 1, 2, 2]))


def money_text(v):
    return f"${v:.2f}" if isinstance(v, float) and v != int(v) else f"${int(v)}"
