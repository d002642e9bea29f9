"""Source kind `opcua`: an OPC UA server's historized or polled values (`connector`), with a
lean reader of HistoryRead answers (`binary`), and its event history (`events`: alarms and conditions)."""

from connectors.opcua.config import OpcUaSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("opcua", config=OpcUaSource, connector="connectors.opcua.connector:OpcUaConnector",
                  tables=("sensor_readings", "events"), discover="connectors.opcua.discover:discover")
