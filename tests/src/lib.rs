//! Integration tests of pinwheel live in `tests/`; this library is empty.
