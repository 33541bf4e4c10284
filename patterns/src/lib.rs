//! Log template mining (work in progress).
