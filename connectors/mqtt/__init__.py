"""Source kind `mqtt`: a broker's durable session drained per interval (`connector`), JSON and
Sparkplug B payloads (`sparkplug`)."""

from connectors.mqtt.config import MqttSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("mqtt", config=MqttSource, connector="connectors.mqtt.connector:MqttConnector",
                  tables=("sensor_readings",), discover="connectors.mqtt.discover:discover")
