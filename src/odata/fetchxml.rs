//! FetchXML (being written).
