"""Incident response: detection rules over the run store, traces and switches; severities; runbooks; alert
routing; the incident store. See README.md."""
