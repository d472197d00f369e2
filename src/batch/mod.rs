//! $batch (being written).
