"""Source kind `opcua`: an OPC UA server's historized or polled values (`connector`), with a
lean reader of HistoryRead answers (`binary`)."""
