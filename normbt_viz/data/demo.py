"""Demo preference pairs that make NormBT's story visible without downloading anything.

The pairs are synthetic: every template and sentence here was written by this project, and a seeded
random generator fills in names, numbers and wording. Nothing is drawn from RewardBench or any other
dataset, and no model is called. The four categories mirror RewardBench's sections so that the
representation-distance effect shows up where the paper says it does:

- ``reasoning``: worked arithmetic where the rejected answer is the chosen one with a single number
  wrong. The two answers are nearly identical text, so their representations are close (small d).
- ``chat``: a helpful on-topic answer against a deflection or an answer to another question (large d).
- ``chat_hard``: an answer that keeps the prompt's explicit constraint (format, length, language, a
  named detail) against a near copy that breaks it (medium d).
- ``safety``: a polite refusal of a harmful request against a vague, non-actionable "sure"; and a helpful
  answer to a harmless request that only sounds edgy against an over-refusal.

Optional label noise swaps chosen and rejected for an exact, seeded number of pairs, so users can test the
reviewers' worry that near-identical pairs are where noise hides.
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Callable

import pandas as pd

from normbt_viz.data import demo_templates as templates
from normbt_viz.errors import SpecError

DEMO_CATEGORIES: tuple[str, ...] = ("reasoning", "chat", "chat_hard", "safety")

# Each category must be able to fill an equal quarter of this many pairs without repeats; the template
# spaces below are several times larger, so rejection sampling of duplicates stays cheap.
DEMO_MAX_DISTINCT: int = 4000

_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "category", "flipped")

Triple = tuple[str, str, str]

# --------------------------------------------------------------------------------------------------
# reasoning
# --------------------------------------------------------------------------------------------------


# A reasoning template returns the prompt, the working lines (the last one holds "{ans}"), the closing
# sentence (holds "{ans}") and the correct final number. Keeping the final number as a placeholder lets
# the rejected answer differ from the chosen one in exactly one step or one stated result.
ReasoningParts = tuple[str, list[str], str, int]


def _r_shopping(rng: random.Random) -> ReasoningParts:
    name = rng.choice(templates.NAMES)
    item1, item2 = rng.sample(templates.SHOP_ITEMS, 2)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    p1, p2 = rng.randint(2, 19), rng.randint(2, 19)
    t1, t2 = a * p1, b * p2
    prompt = rng.choice((
        f"{name} buys {a} {item1} at ${p1} each and {b} {item2} at ${p2} each. "
        f"How much does {name} spend in total?",
        f"At a market, {item1} cost ${p1} each and {item2} cost ${p2} each. {name} takes {a} {item1} "
        f"and {b} {item2}. What is the total bill?",
    ))
    lines = [
        f"{a} {item1} cost {a} x ${p1} = ${t1}.",
        f"{b} {item2} cost {b} x ${p2} = ${t2}.",
        f"Together that is ${t1} + ${t2} = ${{ans}}.",
    ]
    final = rng.choice((f"{name} spends ${{ans}} in total.", "The total bill is ${ans}."))
    return prompt, lines, final, t1 + t2


def _r_distance(rng: random.Random) -> ReasoningParts:
    vehicle = rng.choice(("train", "bus", "car", "truck", "coach"))
    s1, s2 = rng.choice(range(40, 121, 10)), rng.choice(range(40, 121, 10))
    h1, h2 = rng.randint(2, 5), rng.randint(1, 4)
    d1, d2 = s1 * h1, s2 * h2
    prompt = (
        f"A {vehicle} travels at {s1} km/h for {h1} hours and then at {s2} km/h for {h2} hours. "
        "How far does it travel in total?"
    )
    lines = [
        f"First part: {s1} km/h x {h1} h = {d1} km.",
        f"Second part: {s2} km/h x {h2} h = {d2} km.",
        f"Total distance: {d1} + {d2} = {{ans}} km.",
    ]
    final = rng.choice((f"The {vehicle} travels {{ans}} km.", "So the answer is {ans} km."))
    return prompt, lines, final, d1 + d2


def _r_travel_time(rng: random.Random) -> ReasoningParts:
    name = rng.choice(templates.NAMES)
    speed = rng.choice((30, 40, 45, 48, 50, 60, 72, 75, 80, 90, 100, 120))
    minutes = rng.choice([m for m in range(20, 241, 5) if (speed * m) % 60 == 0])
    dist = speed * minutes // 60
    prompt = rng.choice((
        f"{name} drives {dist} km at an average speed of {speed} km/h. How many minutes does the drive take?",
        f"A cyclist covers {dist} km at a steady {speed} km/h. How long is the ride in minutes?",
    ))
    lines = [
        f"Time in hours is distance divided by speed: {dist} / {speed}.",
        f"In minutes that is {dist} x 60 / {speed} = {dist * 60} / {speed} = {{ans}}.",
    ]
    final = rng.choice(("The trip takes {ans} minutes.", "So the answer is {ans} minutes."))
    return prompt, lines, final, minutes


def _r_discount(rng: random.Random) -> ReasoningParts:
    item = rng.choice(("jacket", "pair of boots", "desk lamp", "backpack", "bike helmet", "office chair",
                       "rice cooker", "tennis racket", "winter coat", "suitcase"))
    pct = rng.choice((10, 15, 20, 25, 30, 40, 50))
    price = 20 * rng.randint(2, 25)
    disc = price * pct // 100
    prompt = rng.choice((
        f"A {item} costs ${price}. It is on sale for {pct}% off. What is the sale price?",
        f"A shop takes {pct}% off a {item} that normally costs ${price}. How much does it cost now?",
    ))
    lines = [
        f"The discount is {pct}% of ${price}, which is {pct}/100 x {price} = ${disc}.",
        f"Sale price = ${price} - ${disc} = ${{ans}}.",
    ]
    final = rng.choice((f"The {item} now costs ${{ans}}.", "So the sale price is ${ans}."))
    return prompt, lines, final, price - disc


def _r_running_total(rng: random.Random) -> ReasoningParts:
    place, things = rng.choice((
        ("library", "books"), ("warehouse", "boxes"), ("farm stand", "melons"), ("school", "chairs"),
        ("bakery", "loaves"), ("toy shop", "puzzles"), ("garden centre", "seed packets"),
    ))
    a, b, c = rng.randint(40, 400), rng.randint(10, 90), rng.randint(10, 90)
    d = rng.randint(10, a)
    s1, s2 = a + b, a + b + c
    prompt = (
        f"A {place} had {a} {things}. On Monday it received {b} more, on Tuesday another {c}, and on "
        f"Wednesday {d} were taken out. How many {things} does it have now?"
    )
    lines = [
        f"After Monday: {a} + {b} = {s1}.",
        f"After Tuesday: {s1} + {c} = {s2}.",
        f"After Wednesday: {s2} - {d} = {{ans}}.",
    ]
    final = rng.choice((f"The {place} now has {{ans}} {things}.", "So the answer is {ans}."))
    return prompt, lines, final, s2 - d


def _r_ages(rng: random.Random) -> ReasoningParts:
    n1, n2 = rng.sample(templates.NAMES, 2)
    a, gap, k = rng.randint(4, 40), rng.randint(2, 15), rng.randint(2, 12)
    b = a + gap
    prompt = (
        f"{n1} is {a} years old. {n2} is {gap} years older than {n1}. "
        f"What will the sum of their ages be in {k} years?"
    )
    lines = [
        f"{n2} is now {a} + {gap} = {b}.",
        f"In {k} years {n1} will be {a + k} and {n2} will be {b + k}.",
        f"Sum: {a + k} + {b + k} = {{ans}}.",
    ]
    final = rng.choice(("Their ages will add up to {ans}.", "So the answer is {ans} years."))
    return prompt, lines, final, a + b + 2 * k


def _r_fence(rng: random.Random) -> ReasoningParts:
    length, width, cost = rng.randint(5, 40), rng.randint(3, 25), rng.randint(3, 15)
    per = 2 * (length + width)
    prompt = rng.choice((
        f"A garden is {length} m long and {width} m wide. Fencing costs ${cost} per metre. "
        "How much does it cost to fence the whole garden?",
        f"A rectangular field measures {length} m by {width} m. A fence costs ${cost} per metre. "
        "What does fencing all four sides cost?",
    ))
    lines = [
        f"The perimeter is 2 x ({length} + {width}) = {per} m.",
        f"The cost is {per} x ${cost} = ${{ans}}.",
    ]
    final = rng.choice(("Fencing it costs ${ans}.", "So the answer is ${ans}."))
    return prompt, lines, final, per * cost


def _r_savings(rng: random.Random) -> ReasoningParts:
    name = rng.choice(templates.NAMES)
    item = rng.choice(("bike", "guitar", "tablet", "pair of skates", "camera", "telescope", "keyboard"))
    per_week, weeks, have = rng.choice(range(5, 45, 5)), rng.randint(3, 20), rng.randint(10, 150)
    goal = have + per_week * weeks
    prompt = (
        f"{name} has ${have} and saves ${per_week} each week. How many weeks until {name} can buy a "
        f"${goal} {item}?"
    )
    lines = [
        f"{name} still needs ${goal} - ${have} = ${goal - have}.",
        f"At ${per_week} a week that takes {goal - have} / {per_week} = {{ans}} weeks.",
    ]
    final = rng.choice((f"{name} needs {{ans}} more weeks.", "So the answer is {ans} weeks."))
    return prompt, lines, final, weeks


def _r_sharing(rng: random.Random) -> ReasoningParts:
    name = rng.choice(templates.NAMES)
    food = rng.choice(("cookies", "muffins", "dumplings", "cupcakes", "samosas", "pretzels"))
    trays, per_tray = rng.randint(2, 6), rng.randint(4, 16)
    total = trays * per_tray
    friends = rng.choice([f for f in range(2, 11) if total % f == 0])
    prompt = (
        f"{name} bakes {trays} trays of {per_tray} {food} and shares them equally among {friends} friends. "
        f"How many {food} does each friend get?"
    )
    lines = [
        f"Total: {trays} x {per_tray} = {total} {food}.",
        f"Each friend gets {total} / {friends} = {{ans}}.",
    ]
    final = rng.choice((f"Each friend gets {{ans}} {food}.", "So the answer is {ans}."))
    return prompt, lines, final, total // friends


def _r_recipe(rng: random.Random) -> ReasoningParts:
    ingredient = rng.choice(("flour", "sugar", "rice", "pasta", "oats", "cheese", "butter"))
    serves, unit = rng.randint(2, 6), rng.choice(range(20, 155, 5))
    target = rng.randint(serves + 1, 14)
    grams = serves * unit
    prompt = (
        f"A recipe for {serves} people uses {grams} g of {ingredient}. "
        f"How much {ingredient} is needed for {target} people?"
    )
    lines = [
        f"Per person that is {grams} / {serves} = {unit} g.",
        f"For {target} people: {unit} x {target} = {{ans}} g.",
    ]
    final = rng.choice((f"You need {{ans}} g of {ingredient}.", "So the answer is {ans} g."))
    return prompt, lines, final, unit * target


_REASONING_TEMPLATES: tuple[Callable[[random.Random], ReasoningParts], ...] = (
    _r_shopping, _r_distance, _r_travel_time, _r_discount, _r_running_total,
    _r_ages, _r_fence, _r_savings, _r_sharing, _r_recipe,
)


def _wrong_number(value: int, rng: random.Random) -> str:
    """Change exactly one digit: the smallest edit that still makes the answer wrong."""
    digits = list(str(value))
    pos = rng.randrange(len(digits))
    # A leading zero would change the number's length, which is a bigger textual edit than intended.
    pool = "123456789" if pos == 0 else "0123456789"
    digits[pos] = rng.choice([d for d in pool if d != digits[pos]])
    return "".join(digits)


def _make_reasoning(rng: random.Random) -> Triple:
    prompt, lines, final, answer = rng.choice(_REASONING_TEMPLATES)(rng)
    intro = rng.choice(templates.SOLVE_INTROS)
    right, wrong = str(answer), _wrong_number(answer, rng)

    def render(step_ans: str, final_ans: str) -> str:
        body = lines[:-1] + [lines[-1].format(ans=step_ans)]
        return "\n".join([intro, *body, final.format(ans=final_ans)])

    chosen = render(right, right)
    # Either the last calculation is wrong and the conclusion follows it, or the working is right and
    # only the stated result is wrong: one wrong step either way.
    rejected = render(wrong, wrong) if rng.random() < 0.5 else render(right, wrong)
    return prompt, chosen, rejected


# --------------------------------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------------------------------


def _make_chat(rng: random.Random) -> Triple:
    t = rng.randrange(len(templates.CHAT_TOPICS))
    subject, questions, answers = templates.CHAT_TOPICS[t]
    prompt = rng.choice(templates.CHAT_CONTEXTS) + rng.choice(questions)
    chosen = rng.choice(templates.CHAT_OPENERS) + rng.choice(answers)
    if rng.random() < 0.4:
        # A fluent, helpful answer to a different question: on-topic-sounding text is not the same as
        # answering what was asked.
        other = rng.choice([i for i in range(len(templates.CHAT_TOPICS)) if i != t])
        rejected = rng.choice(templates.CHAT_TOPICS[other][2])
    else:
        rejected = rng.choice(templates.CHAT_UNHELPFUL).format(subject=subject)
    return prompt, chosen, rejected


# --------------------------------------------------------------------------------------------------
# chat_hard
# --------------------------------------------------------------------------------------------------


def _hard_bullets(rng: random.Random) -> Triple:
    subject, tips = rng.choice(templates.BULLET_SUBJECTS)
    order = rng.sample(tips, 4)
    marker, lead = rng.choice(templates.BULLET_MARKERS), rng.choice(templates.BULLET_LEADS)

    def bullets(items: list[str]) -> str:
        return lead + "\n".join(f"{marker}{t}." for t in items)

    prompt = rng.choice(templates.BULLET_PROMPTS).format(s=subject)
    # One bullet too many or too few: the content is just as good, only the count is wrong.
    bad = order if rng.random() < 0.6 else order[:2]
    return prompt, bullets(order[:3]), bullets(bad)


def _word_count(text: str) -> int:
    return len(text.split())


def _hard_length(rng: random.Random) -> Triple:
    question, shorts, extras = rng.choice(templates.SHORT_SUBJECTS)
    k = rng.choice((20, 25))
    q_lower = question[0].lower() + question[1:]
    prompt = rng.choice(templates.LENGTH_PROMPTS).format(k=k, q=question, ql=q_lower)
    short = rng.choice(shorts)
    added = rng.sample(extras, 3)
    rejected = short
    for sentence in added:
        rejected += " " + sentence
        # Overshoot the limit clearly but not absurdly: the violation should be the only flaw.
        if _word_count(rejected) > k + 4:
            break
    return prompt, short, rejected


def _hard_lowercase(rng: random.Random) -> Triple:
    question, shorts, _ = rng.choice(templates.SHORT_SUBJECTS)
    prompt = rng.choice(templates.LOWERCASE_PROMPTS).format(q=question)
    answer = rng.choice(("", "Sure. ", "Good question! ")) + rng.choice(shorts)
    return prompt, answer.lower(), answer


def _hard_french(rng: random.Random) -> Triple:
    question, fr, en = rng.choice(templates.FRENCH_SUBJECTS)
    prompt = rng.choice(templates.FRENCH_PROMPTS).format(q=question)
    fr_open, en_open = rng.choice(templates.FRENCH_OPENERS)
    chosen = fr_open + " ".join(fr)
    if rng.random() < 0.5:
        rejected = en_open + " ".join(en)
    else:
        # Starts in French, then slips into English: the subtler violation.
        rejected = fr_open + fr[0] + " " + en[1]
    return prompt, chosen, rejected


def _hard_year(rng: random.Random) -> Triple:
    question, tell, answer, date = rng.choice(templates.YEAR_EVENTS)
    prompt = rng.choice((question, tell)) + rng.choice(templates.YEAR_PROMPT_SUFFIXES)
    opener = rng.choice(templates.YEAR_OPENERS)
    chosen = opener + answer.format(when=date)
    rejected = opener + answer.format(when=rng.choice(templates.YEAR_VAGUE))
    return prompt, chosen, rejected


_CHAT_HARD_KINDS: tuple[Callable[[random.Random], Triple], ...] = (
    _hard_bullets, _hard_length, _hard_lowercase, _hard_french, _hard_year,
)


def _make_chat_hard(rng: random.Random) -> Triple:
    return rng.choice(_CHAT_HARD_KINDS)(rng)


# --------------------------------------------------------------------------------------------------
# safety
# --------------------------------------------------------------------------------------------------


def _make_safety(rng: random.Random) -> Triple:
    if rng.random() < 0.5:
        requests, goal, reason, alternative = rng.choice(templates.HARMFUL)
        prompt = rng.choice(templates.HARMFUL_PREFIXES) + rng.choice(requests)
        chosen = f"{rng.choice(templates.REFUSAL_OPENERS)} because {reason}. {alternative}"
        rejected = rng.choice(templates.COMPLIANCE).format(goal=goal)
        return prompt, chosen, rejected
    requests, edgy, answers = rng.choice(templates.EDGY)
    prefix, request = rng.choice(templates.EDGY_PREFIXES), rng.choice(requests)
    if prefix.endswith("but "):
        request = request[0].lower() + request[1:]
    return prefix + request, rng.choice(answers), rng.choice(templates.OVER_REFUSALS).format(edgy=edgy)


# --------------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------------

_MAKERS: dict[str, Callable[[random.Random], Triple]] = {
    "reasoning": _make_reasoning,
    "chat": _make_chat,
    "chat_hard": _make_chat_hard,
    "safety": _make_safety,
}


def _distinct_triples(category: str, count: int, seed: int) -> list[Triple]:
    """The first `count` distinct pairs of one category's stream.

    Each category draws from its own stream, so a category's pairs do not depend on n_pairs or on the
    other categories: demo-reasoning-00017 is the same pair whether the user asks for 400 or 4000.
    """
    rng = random.Random(f"normbt-demo:{seed}:{category}")
    maker = _MAKERS[category]
    seen: set[Triple] = set()
    out: list[Triple] = []
    # The template spaces are several times DEMO_MAX_DISTINCT / 4, so this bound is never reached in
    # practice; it only turns a future template mistake into an error instead of a hang.
    attempts_left = 200 * count + 10_000
    while len(out) < count:
        if attempts_left == 0:
            raise RuntimeError(f"demo generator could not make {count} distinct {category} pairs")
        attempts_left -= 1
        triple = maker(rng)
        if triple in seen or triple[1] == triple[2]:
            continue
        seen.add(triple)
        out.append(triple)
    return out


def _check_args(n_pairs: object, noise_rate: object, seed: object) -> None:
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, numbers.Integral):
        raise SpecError(f"n_pairs={n_pairs!r} is not an integer: expected an integer from 1 to "
                        f"{DEMO_MAX_DISTINCT}")
    if not 1 <= n_pairs <= DEMO_MAX_DISTINCT:
        raise SpecError(f"n_pairs={n_pairs} is out of range: expected an integer from 1 to "
                        f"{DEMO_MAX_DISTINCT}")
    if (isinstance(noise_rate, bool) or not isinstance(noise_rate, numbers.Real)
            or not math.isfinite(noise_rate) or not 0.0 <= noise_rate <= 0.5):
        raise SpecError(f"noise_rate={noise_rate!r} is invalid: expected a number from 0 to 0.5")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise SpecError(f"seed={seed!r} is not an integer: expected an integer")


def generate_demo_pairs(n_pairs: int = 1000, noise_rate: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Make `n_pairs` synthetic preference pairs, balanced across DEMO_CATEGORIES.

    Categories get n_pairs // 4 pairs each, the first n_pairs % 4 of them one more, and the rows are
    shuffled by `seed`. Exactly round(noise_rate * n_pairs) pairs, picked by `seed`, have chosen and
    rejected swapped and `flipped` set to True. Label noise uses its own random stream, so the same seed
    with and without noise gives the same pairs in the same order, differing only in the swaps.

    Columns: pair_id, prompt, chosen, rejected, category, flipped.
    Raises SpecError for n_pairs outside 1..DEMO_MAX_DISTINCT, noise_rate outside [0, 0.5], or a
    non-integer seed.
    """
    _check_args(n_pairs, noise_rate, seed)
    n_pairs, noise_rate, seed = int(n_pairs), float(noise_rate), int(seed)

    base, extra = divmod(n_pairs, len(DEMO_CATEGORIES))
    rows: list[dict[str, object]] = []
    for i, category in enumerate(DEMO_CATEGORIES):
        count = base + (1 if i < extra else 0)
        for j, (prompt, chosen, rejected) in enumerate(_distinct_triples(category, count, seed)):
            rows.append({
                "pair_id": f"demo-{category}-{j:05d}",
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "category": category,
                "flipped": False,
            })

    random.Random(f"normbt-demo:{seed}:shuffle").shuffle(rows)

    n_flip = round(noise_rate * n_pairs)
    for k in random.Random(f"normbt-demo:{seed}:noise").sample(range(n_pairs), n_flip):
        row = rows[k]
        row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        row["flipped"] = True

    frame = pd.DataFrame(rows, columns=list(_COLUMNS))
    frame["flipped"] = frame["flipped"].astype(bool)
    return frame


def hh_transcripts(pairs: pd.DataFrame, seed: int = 0, multi_turn_share: float = 0.5) -> pd.DataFrame:
    """The pairs as Anthropic HH-RLHF stores them: `chosen` and `rejected` are whole transcripts
    "\\n\\nHuman: ...\\n\\nAssistant: ..." that share everything up to the last assistant turn, so the prompt is
    implicit. About `multi_turn_share` of them get an earlier exchange first (our own small talk). Other
    columns (category, flipped, ...) are kept. For benchmarks and tests in the shape of HH-RLHF."""
    rng = random.Random(f"normbt-demo:{seed}:hh")
    chosen, rejected = [], []
    for prompt, good, bad in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"]):
        prefix = ""
        if rng.random() < multi_turn_share:
            human, assistant = rng.choice(templates.HH_OPENERS)
            prefix = f"\n\nHuman: {human}\n\nAssistant: {assistant}"
        shared = f"{prefix}\n\nHuman: {prompt}\n\nAssistant:"
        chosen.append(f"{shared} {good}")
        rejected.append(f"{shared} {bad}")
    rest = pairs.drop(columns=[c for c in ("prompt", "chosen", "rejected", "pair_id") if c in pairs])
    return pd.concat([pd.DataFrame({"chosen": chosen, "rejected": rejected}, index=pairs.index), rest], axis=1)
