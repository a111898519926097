"""Archives: a group's imported history (the Facebook bridge's archive rooms)
listed in the Space and handed to the group's members."""
