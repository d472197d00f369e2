//! CSDL metadata (being written).
