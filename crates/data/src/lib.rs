//! swinface-data
