"""The admin agent: the one Hearth component that holds a Synapse admin token.

The chat-facing bots hold no admin token. What truly needs Synapse's admin
API goes through this small, separate process, over a Unix socket that only
the bots' group can open, and only as one of a typed allow-list of requests
(:mod:`bots.adminagent.requests`). Each request is checked against the
community file and written to an audit log.
"""
