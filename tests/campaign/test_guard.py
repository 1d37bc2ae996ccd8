"""One process per campaign, and signals that stop a send cleanly."""
from __future__ import annotations

import signal
import threading

import pytest

from postbode.campaign import guard
from postbode.errors import CampaignError


def test_a_second_sender_of_the_same_campaign_is_refused(send_settings):
    with guard.campaign_lock(send_settings, "nieuwsbrief--everyone"):
        with pytest.raises(CampaignError, match="being sent by another postbode process"):
            with guard.campaign_lock(send_settings, "nieuwsbrief--everyone"):
                pass
        with guard.campaign_lock(send_settings, "nieuwsbrief--funders"):
            pass  # another campaign is not held up
    with guard.campaign_lock(send_settings, "nieuwsbrief--everyone"):
        pass      # released on the way out


@pytest.mark.parametrize("number", guard.STOP_SIGNALS)
def test_the_first_signal_asks_to_stop_and_the_second_aborts(number):
    stop = threading.Event()
    before = signal.getsignal(number)
    with guard.interrupts(stop):
        signal.raise_signal(number)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(number)
    assert signal.getsignal(number) is before
