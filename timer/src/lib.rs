//! The hierarchical timing wheel behind `pinwheel::time`: a plain data structure, no threads and
//! no clock. Its API is planned in the project's issue list; the crate exists now so the
//! workspace has its final shape.
