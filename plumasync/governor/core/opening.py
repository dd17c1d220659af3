"""A window's opening, sans-I/O: how many permits may be out before the window's first answer arrives.

Until the first answer of the current window (of any, when cold) comes, one probe may be out (cold,
another consumer of the account seen, a far Reset being checked), or half the limit when the window is
ours, less permits sent before the reset still unanswered (they may reach the server after it): a limit
lowered to no less than half is then learnt without a 429.  A probe blocks a tenth of a window at most: a
process killed holding it costs that, not a window.
"""

from __future__ import annotations

__all__ = ["probe_wait"]


def probe_wait(now: float, *, window: float, permits: dict[str, float], cold: bool, reset_local: float | None,
               contended: bool, limit: int, rtt: float | None) -> float | None:
    """None when one more permit may go out now; else until when to wait for the window's first answer.

    ``permits`` maps permits in flight to their admission times; ``cold``: no answer was ever heard;
    ``reset_local``: the current window's end (local clock); ``rtt``: the smoothed round trip, if known.
    """
    timeout = window / 10
    allowance = 1
    if cold or reset_local is None or reset_local - now > window:
        probes = list(permits.values())
    else:
        window_start = reset_local - window
        probes = [t for t in permits.values() if t >= window_start]
        carried = len(permits) - len(probes)  # sent before the reset: may be counted in this window
        allowance = 1 if contended else max(1, limit // 2 - carried)
    live = [t for t in probes if t > now - timeout]
    if len(live) < allowance:
        return None
    sent, give_up = max(live), max(live) + timeout
    if rtt is None:
        return give_up
    # Its answer is due about one round trip after it was sent: look again then (other processes
    # sharing the store are not woken by it), and every round trip after that.
    return min(give_up, max(sent + 2 * rtt, now + rtt))
