"""Thanks (bots/thanks/feature.py): the example feature of docs/writing-a-feature.md."""
