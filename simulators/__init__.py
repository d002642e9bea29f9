"""The virtual plant: OPC UA, MQTT, camera and ERP simulators telling one coherent story."""
