//! A safe subset of Python's pickle format.
