"""Write energy_hpc/data/bundled/demo.csv: a small, synthetic, clearly-labelled demo dataset.

The texts are invented citizen messages to a city administration, made from templates so the
default run works offline. They are a demo, not a benchmark: accuracies on them say nothing
about real tasks. Rerun this script to regenerate the file byte for byte.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TOPICS = {
    "building_permit": {
        "subject": ["my building permit", "the permit for our garage", "the extension of our house",
                    "a roof terrace application", "the planning application for a shed",
                    "the construction permit for the bakery"],
        "detail": ["the architect sent the drawings in March", "the neighbours objected to the height",
                   "the fire safety report is attached", "we need approval before the builders start",
                   "the zoning plan allows two storeys", "the inspection of the foundations is due"],
    },
    "waste_collection": {
        "subject": ["the recycling bin", "bulky waste pickup", "the organic waste container",
                    "the glass collection point", "the paper bin on our street", "hazardous waste disposal"],
        "detail": ["the truck skipped our street twice", "the container is broken and smells",
                   "we moved and need a new bin", "the collection calendar lists the wrong day",
                   "old paint and batteries need to go somewhere", "the lid was damaged by the truck"],
    },
    "taxes_fees": {
        "subject": ["the property tax notice", "the dog licence fee", "my trade tax assessment",
                    "the second home tax", "the invoice for street cleaning", "the annual water fee"],
        "detail": ["the amount is higher than last year", "I already paid by bank transfer",
                   "the assessment uses the wrong floor area", "I would like to pay in instalments",
                   "the due date fell during my hospital stay", "the account number on the notice is wrong"],
    },
    "public_transport": {
        "subject": ["the bus line 7", "the tram stop at the market", "the night bus",
                    "the school bus for our children", "the ticket machine at the station",
                    "the park and ride car park"],
        "detail": ["it was late every morning this week", "the timetable changed without notice",
                   "the stop is not accessible with a wheelchair", "the connection to the train is missed",
                   "the machine does not accept cards", "the shelter has no lighting at night"],
    },
}
OPENERS = ["Dear Sir or Madam,", "Hello,", "Good morning,", "To the city office:", "Hi there,", ""]
ASKS = ["Could you please look into {s}?", "I am writing about {s}.", "There is a problem with {s}.",
        "I have a question regarding {s}.", "Please help with {s}.", "Who is responsible for {s}?"]
CLOSERS = ["Thank you.", "Kind regards.", "I look forward to your reply.", "Please call me back.", "",
           "Best wishes from the old town."]
SHARED = ["The office was closed when I came by.", "Your website did not answer my question.",
          "I sent an email last month without reply.", "My neighbour has the same issue.", ""]


def main(n_per_topic: int = 120, seed: int = 7) -> None:
    rng = random.Random(seed)
    rows = []
    for label, parts in TOPICS.items():
        for _ in range(n_per_topic):
            text = " ".join(filter(None, [
                rng.choice(OPENERS),
                rng.choice(ASKS).format(s=rng.choice(parts["subject"])),
                # a quarter of the messages mention another topic's detail, so the demo is not trivial
                rng.choice(parts["detail"] if rng.random() > 0.25
                           else TOPICS[rng.choice(list(TOPICS))]["detail"]).capitalize() + ".",
                rng.choice(SHARED),
                rng.choice(CLOSERS),
            ]))
            rows.append((text, label))
    rng.shuffle(rows)
    out = Path(__file__).resolve().parents[1] / "energy_hpc" / "data" / "bundled" / "demo.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
