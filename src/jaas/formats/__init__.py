"""File formats: RAW (our DAQ binary), RTRAW and ESD (ROOT), index (Parquet)."""
