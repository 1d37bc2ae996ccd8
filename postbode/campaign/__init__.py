"""Campaign stage: send a newsletter to segments exactly once, through a transport and the journal.

    run.py          the entry points (plan, run, dry_run, send_test) over one session
    session.py      the shared opening: transport URL, signing key, newsletter, database
    planning.py     the plan shown before sending, and whether there is anything to send
    fingerprint.py  the newsletter's fingerprint, and the refusal to resume a changed one
    variants.py     the (locale, view) variants a send needs, prepared once each
    guard.py        one process per campaign; Ctrl-C and SIGTERM stop cleanly
    pacing.py       Policy, token bucket, quotas and failure runs behind one Gate
    sender.py       a Worker per connection; the commit order that makes a send exactly-once
    states.py       the campaign's and its rows' states
"""
from postbode.campaign.fingerprint import Fingerprint, fingerprint
from postbode.campaign.pacing import Gate, Policy, TokenBucket, backoff
from postbode.campaign.planning import Plan, PlanLine
from postbode.campaign.run import (DryRunSummary, SendSummary, TestSendSummary, dry_run, plan,
                                   run, send_test)
from postbode.campaign.session import signing_settings
from postbode.campaign.states import CampaignState, RowState
from postbode.campaign.variants import prepare_variants

__all__ = [
    "CampaignState", "DryRunSummary", "Fingerprint", "Gate", "Plan", "PlanLine", "Policy",
    "RowState", "SendSummary", "TestSendSummary", "TokenBucket", "backoff", "dry_run",
    "fingerprint", "plan", "prepare_variants", "run", "send_test", "signing_settings",
]
