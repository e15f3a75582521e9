//! Log ingestion (being written).
