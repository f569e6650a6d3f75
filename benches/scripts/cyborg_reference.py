#!/usr/bin/env python3
"""CAGE Challenge 2's own figures, from CybORG itself, for Security-v0's faithful mode.

    git clone https://github.com/cage-challenge/cage-challenge-2 && pip install -e cage-challenge-2/CybORG
    pip install "numpy<2" gym==0.26.2 prettytable paramiko pyyaml
    python3 benches/scripts/cyborg_reference.py --episodes 400

Plays CybORG v2's scripted defenders (SleepAgent, BlueReactRestoreAgent,
BlueReactRemoveAgent) against its scripted attackers (B_lineAgent, RedMeanderAgent) on
Scenario2 for `--steps` steps, and prints one JSON line per pair: the mean of the
defender's episode reward, its standard deviation and standard error. These are the
reference figures policies/tests/policies/defence.rs holds hale's reproduction to
(hale's side: `hale eval --env Security-v0 --config '{"observation": "table+alerts",
"red": "b_line"}' --policy noop,react-restore,react-remove --episodes 1000`).
CybORG is slow (about 200 steps/s); 400 episodes of 100 steps take 4-5 minutes a pair.
"""

import argparse
import inspect
import json
import random
import statistics
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=400, help="episodes per pair")
    p.add_argument("--steps", type=int, default=100, help="steps per episode (CAGE 2 scores 30, 50, 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of Python's random (CybORG draws from it)")
    a = p.parse_args()

    from CybORG import CybORG
    from CybORG.Agents import B_lineAgent, RedMeanderAgent, SleepAgent
    from CybORG.Agents.SimpleAgents.BlueReactAgent import BlueReactRemoveAgent, BlueReactRestoreAgent

    path = str(inspect.getfile(CybORG))[:-10] + "/Shared/Scenarios/Scenario2.yaml"
    for red in [B_lineAgent, RedMeanderAgent]:
        for blue in [SleepAgent, BlueReactRestoreAgent, BlueReactRemoveAgent]:
            random.seed(a.seed)
            cyborg = CybORG(path, "sim", agents={"Red": red, "Blue": blue})
            totals = []
            start = time.time()
            for _ in range(a.episodes):
                cyborg.reset()
                total = 0.0
                for _ in range(a.steps):
                    cyborg.step()
                    total += cyborg.get_rewards()["Blue"]
                totals.append(total)
            sd = statistics.stdev(totals)
            print(json.dumps({
                "red": red.__name__, "blue": blue.__name__, "episodes": a.episodes, "steps": a.steps,
                "mean": round(statistics.mean(totals), 2), "sd": round(sd, 2),
                "se": round(sd / len(totals) ** 0.5, 2), "seconds": round(time.time() - start, 1),
            }), flush=True)


if __name__ == "__main__":
    main()
