"""Source kind `erp`: an ERP's tables over SQL by change cursor, or its CSV exports (`connector`)."""
