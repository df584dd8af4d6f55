//! ST Edge AI hand-off (in progress).
