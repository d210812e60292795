#!/usr/bin/env python3
"""Generate the bundled instruction pool: original Self-Instruct-style `{instruction, input, output}` records.

Run `python scripts/make_instruction_pool.py` (standard library only). Each record is one task, as in
the paper's Self-Instruct setting. The items come from the demo pool's generators
(`make_demo_pool.py`); what this script adds is the variety of instructions a real instruction
dataset has: the same skill asked tersely ("Reverse the word."), at length, or with the input
written into the instruction. Terse instructions are there on purpose: with 2-4 words, dropping
words at rate 0.2 often changes nothing, which `scoring.redraw_identical` exists for.
The output is byte-identical for a given `--seed`.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from make_demo_pool import SPECS, Spec, write_lines, write_text

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "activeit" / "data" / "instructions"
RECORDS_PER_SKILL = 8
QUESTIONS = 12

SHORT = {  # a terse instruction per skill, as many Self-Instruct records are
    "demo001_review_sentiment": "Classify the review's sentiment.",
    "demo002_even_number": "Even or odd?",
    "demo003_is_question": "Is this a question?",
    "demo004_sentence_topic": "Name the topic.",
    "demo005_animal_class": "Classify the animal.",
    "demo006_fruit_or_vegetable": "Fruit or vegetable?",
    "demo007_number_comparison": "Compare the numbers.",
    "demo008_sum_check": "Check the sum.",
    "demo009_greeting_language": "Identify the language.",
    "demo010_word_pair_relation": "Synonyms or antonyms?",
    "demo011_negation_detection": "Is it negated?",
    "demo012_spelling_check": "Check the spelling.",
    "demo013_singular_or_plural": "Singular or plural?",
    "demo014_spam_detection": "Spam or not?",
    "demo015_capital_fact_check": "Check this fact.",
    "demo016_vowel_or_consonant": "Vowel or consonant?",
    "demo017_country_continent": "Name the continent.",
    "demo018_purchase_entailment": "Does it follow?",
    "demo019_larger_number": "Pick the larger number.",
    "demo020_addition": "Add the numbers.",
    "demo021_subtraction": "Subtract the numbers.",
    "demo022_reverse_word": "Reverse the word.",
    "demo023_uppercase_phrase": "Uppercase this.",
    "demo024_first_letter": "Give the first letter.",
    "demo025_count_words": "Count the words.",
    "demo026_antonym": "Give an antonym.",
    "demo027_synonym": "Give a synonym.",
    "demo028_country_capital": "Name the capital.",
    "demo029_animal_sound": "What sound?",
    "demo030_plural_noun": "Pluralize the noun.",
    "demo031_past_tense": "Give the past tense.",
    "demo032_odd_one_out": "Find the odd one.",
    "demo033_alphabetical_first": "Which comes first alphabetically?",
    "demo034_next_in_sequence": "Continue the sequence.",
    "demo035_number_to_words": "Write it in words.",
    "demo036_weekday_offset": "Fill in the day.",
    "demo037_object_color": "Name the color.",
    "demo038_shape_sides": "Count the sides.",
    "demo039_unit_conversion": "Convert the units.",
    "demo040_make_negative": "Negate the sentence.",
    "demo041_statement_to_question": "Make it a question.",
    "demo042_animal_young_analogy": "Complete the analogy.",
}
POLITE = ["Please {lower}", "{text} Answer briefly.", "{text} Reply with the answer only.",
          "I need help with this. {text}", "Task: {lower}", "{text} Be precise."]


def styled(spec: Spec, style: str, rng: random.Random, inp: str) -> tuple[str, str]:
    """(instruction, input) of one record in one of four styles."""
    if style == "short":
        return SHORT[spec.name], inp
    if style == "inline":  # the input is part of the instruction, as in many user requests
        return f"{spec.definition}\n\n{inp}", ""
    if style == "polite":
        text = spec.definition
        return rng.choice(POLITE).format(text=text, lower=text[0].lower() + text[1:]), inp
    return spec.definition, inp


def skill_items(spec: Spec, seed: int) -> list[tuple[str, list[str]]]:
    """The skill's distinct items in a seeded order that does not depend on generation order."""
    rng = random.Random(f"{seed}:{spec.name}:items")
    items = sorted(dict(reversed(spec.generate(rng))).items())
    rng.shuffle(items)
    return items


def build(seed: int) -> tuple[list[dict], list[dict]]:
    """(pool records, judge questions). Questions use items no record uses."""
    assert set(SHORT) == {s.name for s in SPECS}, "every skill needs a short instruction"
    styles = ["plain", "short", "inline", "polite"]
    records, held_out = [], []
    for spec in SPECS:
        rng = random.Random(f"{seed}:{spec.name}:records")
        items = skill_items(spec, seed)
        assert len(items) >= RECORDS_PER_SKILL + 1, spec.name
        for k, (inp, outputs) in enumerate(items[:RECORDS_PER_SKILL]):
            instruction, record_input = styled(spec, styles[k % len(styles)], rng, inp)
            records.append({"instruction": instruction, "input": record_input, "output": outputs[0],
                            "category": spec.category})
        held_out.append((spec, items[RECORDS_PER_SKILL]))
    rng = random.Random(f"{seed}:order")
    rng.shuffle(records)
    assert len({(r["instruction"], r["input"]) for r in records}) == len(records), "two records ask the same thing"
    questions = []
    for k, (spec, (inp, outputs)) in enumerate(sorted(rng.sample(held_out, QUESTIONS), key=lambda q: q[0].name)):
        instruction, q_input = styled(spec, "inline" if k % 2 else "plain", rng, inp)
        questions.append({"id": f"q{k + 1:02d}", "instruction": instruction, "input": q_input,
                          "reference": outputs[0]})
    return records, questions


README = """\
# activeit instruction pool

{n} original Self-Instruct-style records (`{{instruction, input, output, category}}`, one task each;
{n_short} with an instruction of at most 4 words, {n_inline} with the input written into the instruction)
in `pool.jsonl`, and {n_q} held-out user questions in `questions.jsonl` for pairwise judging
(`{{id, instruction, input, reference}}`; no record asks the same item).

Used by `configs/instructions_demo.yaml` (`data.path: bundled:instructions/pool.jsonl`).
Generated deterministically by `python scripts/make_instruction_pool.py` (seed {seed}) from the
demo pool's item generators. Do not edit these files by hand: change the script and rerun it.
All content is original, written for activeit, and licensed like the repository (Apache-2.0).
"""


def write_pool(out: Path, seed: int) -> tuple[int, int]:
    records, questions = build(seed)
    write_lines(out / "pool.jsonl", [json.dumps(r, ensure_ascii=False) for r in records])
    write_lines(out / "questions.jsonl", [json.dumps(q, ensure_ascii=False) for q in questions])
    write_text(out / "README.md", README.format(
        n=len(records), n_q=len(questions), seed=seed,
        n_short=sum(len(r["instruction"].split()) <= 4 for r in records),
        n_inline=sum(not r["input"] for r in records)))
    return len(records), len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    args = parser.parse_args()
    n, q = write_pool(args.out, args.seed)
    print(f"wrote {n} records and {q} questions to {args.out}")


if __name__ == "__main__":
    main()
