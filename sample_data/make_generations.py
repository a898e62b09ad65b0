"""Write sample_data/generations/generations.jsonl: text generations of one toy "model" (a weighted
template grammar per prompt) under two decoding settings on the same prompts, so that diversity
per prompt can be shown without a language model.

- ``temp1.0``: each slot of the template sampled from its weights as they are: varied.
- ``temp0.2``: the weights sharpened as a temperature of 0.2 does (w ** 5): the top choice
  nearly always wins, so the model repeats itself within a prompt, while its answers to
  different prompts still differ.

Deterministic: Python's ``random.Random`` with a fixed seed (its sequence is stable across
Python versions). Run: ``python sample_data/make_generations.py``.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "generations" / "generations.jsonl"
PER_PROMPT = 8
SETTINGS = {"temp1.0": 1.0, "temp0.2": 0.2}

# per prompt: slots of (option) lists, most likely first; the weight of option i is 1 / (i + 1)
PROMPTS: dict[str, list[list[str]]] = {
    "Describe the sea at dawn.": [
        ["The sea", "The water", "The ocean", "The bay", "The tide", "The harbour"],
        ["lies calm", "glows pink", "breathes slowly", "shivers", "turns silver", "roars"],
        ["under a pale sky", "beside the old pier", "as gulls wake", "while boats drift out", "in thin fog",
         "past the rocks"]],
    "Write a line about a city at night.": [
        ["The city", "The streets", "Downtown", "The avenue", "The skyline", "The old quarter"],
        ["hums softly", "glitters", "never sleeps", "smells of rain", "echoes with sirens", "goes quiet"],
        ["under neon signs", "after the last train", "while taxis wait", "as windows go dark", "near the river",
         "above the market"]],
    "Describe a forest in autumn.": [
        ["The forest", "The woods", "The oaks", "The path", "The maples", "The clearing"],
        ["burns red and gold", "drops its leaves", "smells of moss", "rustles", "grows still", "glows amber"],
        ["in the cold wind", "before the first frost", "as deer pass", "under grey clouds", "at dusk",
         "after the rain"]],
    "Tell me about your morning coffee.": [
        ["My coffee", "The first cup", "The espresso", "This brew", "The mug", "The pot"],
        ["is strong and dark", "tastes of chocolate", "steams gently", "wakes me up", "is too hot", "smells sweet"],
        ["before work", "by the window", "with warm milk", "in the quiet kitchen", "while I read",
         "on the balcony"]],
    "Describe a storm in the mountains.": [
        ["The storm", "Thunder", "Lightning", "The wind", "Hail", "Dark clouds"],
        ["rolls over the peaks", "cracks the sky", "howls", "batters the cabin", "floods the valley",
         "hides the summit"],
        ["all night", "without warning", "above the glacier", "as climbers shelter", "for hours",
         "near the pass"]],
    "Write about a child learning to ride a bike.": [
        ["The child", "My daughter", "The boy", "Little Sam", "The girl", "My son"],
        ["wobbles", "pedals hard", "falls and laughs", "finally balances", "rings the bell", "grips the handles"],
        ["down the lane", "in the park", "while dad runs behind", "on a sunny Sunday", "past the bakery",
         "for the first time"]],
    "Describe an old library.": [
        ["The library", "The reading room", "The shelves", "The archive", "The old hall", "The stacks"],
        ["smells of dust", "creaks", "holds forgotten maps", "stays silent", "glows with lamplight",
         "hides rare books"],
        ["since 1820", "behind oak doors", "under a glass dome", "as scholars whisper", "at closing time",
         "in the winter light"]],
    "Write a sentence about a market in summer.": [
        ["The market", "The stalls", "The square", "The vendors", "The fruit stand", "The crowd"],
        ["overflows with peaches", "buzzes", "smells of basil", "sells bright flowers", "shouts prices",
         "slows in the heat"],
        ["every Saturday", "under striped awnings", "at noon", "near the fountain", "until sunset",
         "beside the church"]],
    "Describe a train journey through the desert.": [
        ["The train", "Our carriage", "The locomotive", "The journey", "The railway", "The night train"],
        ["crosses red dunes", "rattles", "stops at empty stations", "races the sunset", "crawls in the heat",
         "whistles"],
        ["for two days", "past dry riverbeds", "under endless sky", "as sand blows in", "towards the coast",
         "through the canyon"]],
    "Write about a cat sleeping in the sun.": [
        ["The cat", "My tabby", "The kitten", "Old Tom", "The black cat", "The ginger cat"],
        ["sleeps", "stretches", "purrs softly", "curls into a ball", "twitches its ears", "dreams"],
        ["on the warm windowsill", "in a patch of sunlight", "on the garden wall", "beside the radiator",
         "all afternoon", "on my keyboard"]],
    "Describe a snowy village.": [
        ["The village", "The rooftops", "The lanes", "The chapel", "The cottages", "The square"],
        ["lies under deep snow", "sparkles", "stays silent", "smokes from every chimney", "glows orange",
         "waits for spring"],
        ["in the valley", "after the blizzard", "as children sled", "at midnight", "beneath the pines",
         "on Christmas Eve"]],
    "Write a line about a concert.": [
        ["The band", "The crowd", "The singer", "The drums", "The orchestra", "The stage"],
        ["plays loud", "sings along", "shakes the hall", "falls silent", "bursts into light", "starts the encore"],
        ["until midnight", "under the stars", "as the bass drops", "in the rain", "for the last time",
         "to a full house"]],
}


def choose(rng: random.Random, options: list[str], temperature: float) -> str:
    """One option, with weight (1 / rank) ** (1 / temperature)."""
    weights = [(1.0 / (i + 1)) ** (1.0 / temperature) for i in range(len(options))]
    point = rng.random() * sum(weights)
    for option, weight in zip(options, weights):
        point -= weight
        if point < 0:
            return option
    return options[-1]


def generations(seed: int = 0) -> list[dict]:
    """Every generation as a record: id, set (the decoding setting), prompt, text."""
    rng = random.Random(seed)
    records = []
    for setting, temperature in SETTINGS.items():
        for p, (prompt, slots) in enumerate(PROMPTS.items()):
            for g in range(PER_PROMPT):
                words = [choose(rng, options, temperature) for options in slots]
                records.append({"id": f"{setting}/p{p:02d}/g{g}", "set": setting, "prompt": prompt,
                                "text": " ".join(words) + "."})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the JSONL to write (default: %(default)s)")
    out = parser.parse_args().out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in generations()), encoding="utf-8")
    print(f"wrote {out} ({len(PROMPTS)} prompts x {PER_PROMPT} generations x {len(SETTINGS)} settings)")


if __name__ == "__main__":
    main()
