"""Source kind `opcua`: an OPC UA server's historized or polled values (`connector`), with a
lean reader of HistoryRead answers (`binary`)."""

from connectors.opcua.config import OpcUaSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("opcua", config=OpcUaSource, connector="connectors.opcua.connector:OpcUaConnector",
                  tables=("sensor_readings",), discover="connectors.opcua.discover:discover")
