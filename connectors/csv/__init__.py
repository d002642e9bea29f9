"""Source kind `csv`: historian CSV exports dropped in a folder (`connector`)."""
