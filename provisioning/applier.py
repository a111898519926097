"""Carry out a plan against the homeserver. The only provisioning code that writes."""

from __future__ import annotations

from collections.abc import Callable

from bots.base.errors import HearthError
from bots.matrix.client_api import ClientAPI
from provisioning.planner import Action, CreateRoom, Invite, Plan, PutState, resolve


class ApplyError(HearthError):
    """A request failed part-way; what was done is kept and a re-run finishes."""


async def apply(
    plan: Plan,
    api: ClientAPI,
    ids: dict[str, str],
    progress: Callable[[Action, int, int], None] | None = None,
) -> dict[str, str]:
    """Perform *plan*; return the label -> room ID map including new rooms.

    Each created room carries its Hearth marker from its first event, so a
    crash at any point leaves the server describing itself: the next plan
    sees what exists and only does the rest.
    """
    total = len(plan.actions)
    for done, action in enumerate(plan.actions):
        try:
            await _perform(action, api, ids)
        except HearthError as exc:
            raise ApplyError(
                f"stopped after {done} of {total} changes: {exc}. "
                "Nothing done so far is lost; run the same command again to finish."
            ) from None
        if progress is not None:
            progress(action, done + 1, total)
    return ids


async def _perform(action: Action, api: ClientAPI, ids: dict[str, str]) -> None:
    if isinstance(action, CreateRoom):
        ids[action.label] = await api.create_room(resolve(action.body, ids))
    elif isinstance(action, PutState):
        await api.put_state(
            ids[action.label],
            action.event_type,
            resolve(action.state_key, ids),
            resolve(action.content, ids),
        )
    elif isinstance(action, Invite):
        await api.invite(ids[action.label], action.user_id)
