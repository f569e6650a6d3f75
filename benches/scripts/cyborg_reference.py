#!/usr/bin/env python3
"""CAGE Challenge 2's own figures, from CybORG itself, for Security-v0's faithful mode.

    git clone https://github.com/cage-challenge/cage-challenge-2 && pip install -e cage-challenge-2/CybORG
    pip install "numpy<2" gym==0.26.2 prettytable paramiko pyyaml
    python3 benches/scripts/cyborg_reference.py --episodes 400

Plays CybORG v2's scripted defenders (SleepAgent, BlueReactRestoreAgent,
BlueReactRemoveAgent, and hale's decoy-first rule written as a CybORG agent) against its scripted attackers (B_lineAgent, RedMeanderAgent) on
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


# Ports each host's own processes listen on, and whether it runs Windows (CybORG's
# images); a decoy needs its port free and, for some, the right system.
PORTS = {
    "Defender": {22, 53, 68}, "Enterprise0": {22}, "Enterprise1": {22, 135, 3389, 445, 139, 80, 443},
    "Enterprise2": {22, 135, 3389, 445, 139, 80, 443}, "Op_Host0": {22}, "Op_Host1": {22},
    "Op_Host2": {22}, "Op_Server0": {22}, "User0": {22, 21}, "User1": {22, 21},
    "User2": {445, 139, 135, 3389}, "User3": {80, 3389, 443, 25}, "User4": {22, 80, 3390, 443, 25},
}
WINDOWS = {"Enterprise1", "Enterprise2", "User0", "User1", "User2"}


def decoy_first_agent():
    """hale's `decoy-first` baseline (policies/src/defence.rs) as a CybORG agent: restore
    hosts where a reverse shell was reported (a process with a PID talking to port 4444),
    else fill Op_Server0, Enterprise2, 1, 0 with decoys, else monitor."""
    from CybORG.Agents.SimpleAgents.BaseAgent import BaseAgent
    from CybORG.Shared.Actions import (DecoyApache, DecoyFemitter, DecoyHarakaSMPT, DecoySmss, DecoySSHD,
                                       DecoySvchost, DecoyTomcat, DecoyVsftpd, Monitor, Restore)

    # (action, port, system: None = any, True = Windows, False = Linux), by the weight of
    # the exploit each catches.
    order = [(DecoyFemitter, 21, True), (DecoyHarakaSMPT, 25, False), (DecoyTomcat, 443, None),
             (DecoyApache, 80, None), (DecoyVsftpd, 80, False), (DecoySmss, 139, True),
             (DecoySvchost, 3389, True), (DecoySSHD, 22, None)]
    report_order = ["User0", "User1", "User2", "User3", "User4", "Enterprise0", "Enterprise1",
                    "Enterprise2", "Defender", "Op_Server0", "Op_Host0", "Op_Host1", "Op_Host2"]

    class DecoyFirst(BaseAgent):
        def __init__(self):
            self.end_episode()

        def end_episode(self):
            self.queue = []
            self.decoys = {h: set() for h in PORTS}

        def train(self, results):
            pass

        def set_initial_values(self, action_space, observation):
            pass

        def get_action(self, observation, action_space):
            session = list(action_space["session"].keys())[0]
            alerted = set()
            for key, info in observation.items():
                if key == "success" or not isinstance(info, dict):
                    continue
                host = info.get("System info", {}).get("Hostname", key)
                for p in info.get("Processes", []):
                    if "PID" in p and any(c.get("remote_port") == 4444 for c in p.get("Connections", [])):
                        alerted.add(host)
            for h in report_order:
                if h != "User0" and h in alerted and h not in self.queue:
                    self.queue.append(h)
            if self.queue:
                h = self.queue.pop(0)
                self.decoys[h] = set()
                return Restore(hostname=h, agent="Blue", session=session)
            for h in ["Op_Server0", "Enterprise2", "Enterprise1", "Enterprise0"]:
                for action, port, windows in order:
                    fits = windows is None or windows == (h in WINDOWS)
                    if fits and port not in PORTS[h] and port not in self.decoys[h]:
                        self.decoys[h].add(port)
                        return action(hostname=h, agent="Blue", session=session)
            return Monitor(agent="Blue", session=session)

    return DecoyFirst


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
        for blue in [SleepAgent, BlueReactRestoreAgent, BlueReactRemoveAgent, decoy_first_agent()]:
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
