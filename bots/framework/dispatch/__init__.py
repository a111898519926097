"""Dispatch: from an event in the inbox to what the bot does about it.
``rooms.py`` runs one worker per room, in the order ``order.py`` decides
(pure: staff first, without reordering a sender or a state change);
``decide.py`` asks the commands and every feature's handlers, writes the
decision in the transaction that settles the event, for the outbox
(``outbox/queue.py``) to perform; ``context.py`` builds the context a
feature's handler is given."""
