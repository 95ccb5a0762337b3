"""MQTT ingest: decode, validate, batch COPY into readings; dead letters; rollups; device health."""
