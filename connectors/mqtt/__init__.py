"""Source kind `mqtt`: a broker's durable session drained per interval (`connector`), JSON and
Sparkplug B payloads (`sparkplug`)."""
