"""The gateway: board links -> durable spool -> MQTT broker (Sparkplug B), and commands back (see README.md)."""
