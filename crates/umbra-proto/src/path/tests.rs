//! Scenario tests of the path manager.
