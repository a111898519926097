"""The outbox's performing side: what was queued is taken in order
(:mod:`.queue`) and each action performed, with its retries, by the
effector (:mod:`.effector`).

Each built-in action has one performer, registered beside it with
:func:`.registry.performs` in the module for its kind: messages
(:mod:`.messages`), the bot's DMs (:mod:`.direct`), membership
(:mod:`.membership`), power and state (:mod:`.room_state`) and redactions
(:mod:`.redaction`). The effector finds a performer by the action's class.
"""
