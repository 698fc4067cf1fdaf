"""The CrossGuard policy pack: `pulumi preview --policy-pack policies`."""

import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# Pulumi runs the pack from this directory; the rules are also imported by the offline synth.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rules import POLICIES  # noqa: E402

PolicyPack(name="trading-platform-guardrails", policies=POLICIES)
