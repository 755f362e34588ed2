"""Configuration as data: board files and the application config, checked against strict schemas."""
