"""Dates and times as a support group means them: recurrence in a named
zone (``recurrence.py``) and strict reading of what people type
(``reading.py``). Pure; used by the meetings feature and by the community
file's declared meetings."""
